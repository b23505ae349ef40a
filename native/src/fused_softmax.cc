// Softmax over the last dim for attention (scale and causal mask folded in, so the scaled and
// masked scores never exist as tensors) and the language-model loss (log-softmax, the target's
// log-probability and the padding mask in one pass, saving one log-sum-exp per row instead of
// [rows, vocab] log-probabilities and a one-hot). Rows are short (a sequence, a vocabulary), so
// the work is split by rows.
#include <algorithm>
#include <cmath>

#include "fused_math.h"
#include "parallel.h"
#include "registry.h"

namespace vlmc {
namespace {

// y = softmax(scale * x) over each row; with `causal` the rows are [.., N, N] attention scores
// and row q keeps columns 0..q (the rest are exactly 0, as exp(-1e9) is in the composite).
VLMC_CLONES void softmax_rows(const float* x, float* y, int64_t r0, int64_t r1, int64_t cols, float scale, bool causal) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const int64_t valid = causal ? (r % cols) + 1 : cols;
    const float m = scaled_max(xr, valid, scale);
    // The exps in their own loop (it vectorizes; a loop that also sums them would not).
    for (int64_t c = 0; c < valid; ++c) yr[c] = fexp(scale * xr[c] - m);
    const float inv = 1.f / lane_sum(yr, valid);
    for (int64_t c = 0; c < valid; ++c) yr[c] *= inv;
    for (int64_t c = valid; c < cols; ++c) yr[c] = 0.f;
  }
}

// dx = scale * y * (dy - sum(dy * y))
VLMC_CLONES void softmax_grad_rows(const float* dy, const float* y, float* dx, int64_t r0, int64_t r1, int64_t cols, float scale) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* dyr = dy + r * cols;
    const float* yr = y + r * cols;
    float* dxr = dx + r * cols;
    const float dot = lane_dot(dyr, yr, cols);
    for (int64_t c = 0; c < cols; ++c) dxr[c] = scale * yr[c] * (dyr[c] - dot);
  }
}

// log(sum(exp(row))) of one row; the exps go through a small buffer so that they vectorize.
VLMC_CLONES float log_sum_exp(const float* row, int64_t v) {
  const float m = scaled_max(row, v, 1.f);
  constexpr int64_t kChunk = 256;
  float e[kChunk];
  float s = 0.f;
  for (int64_t c0 = 0; c0 < v; c0 += kChunk) {
    const int64_t len = std::min(kChunk, v - c0);
    for (int64_t c = 0; c < len; ++c) e[c] = fexp(row[c0 + c] - m);
    s += lane_sum(e, len);
  }
  return m + std::log(s);
}

int64_t grain_rows(int64_t cols) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(cols, 1)); }

// (heap, x, y, rows, cols, scale, causal)
Napi::Value SoftmaxForward(const Napi::CallbackInfo& info) {
  const float* x = f32(info, 1);
  float* y = f32(info, 2);
  const int64_t rows = int_arg(info, 3), cols = int_arg(info, 4);
  const float scale = static_cast<float>(num_arg(info, 5));
  const bool causal = info[6].ToBoolean().Value();
  parallel_for(rows, grain_rows(cols), [&](int64_t a, int64_t b) { softmax_rows(x, y, a, b, cols, scale, causal); });
  return info.Env().Undefined();
}

// (heap, dy, y, dx, rows, cols, scale)
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  const float* dy = f32(info, 1);
  const float* y = f32(info, 2);
  float* dx = f32(info, 3);
  const int64_t rows = int_arg(info, 4), cols = int_arg(info, 5);
  const float scale = static_cast<float>(num_arg(info, 6));
  parallel_for(rows, grain_rows(cols), [&](int64_t a, int64_t b) { softmax_grad_rows(dy, y, dx, a, b, cols, scale); });
  return info.Env().Undefined();
}

// The logits row of text position t of batch item b: logits are [B, n, V], the text is the
// last T positions.
inline const float* text_row(const float* logits, int64_t b, int64_t t, int64_t n, int64_t T, int64_t V) { return logits + ((b * n) + (n - T + t)) * V; }

// (heap, logits, targets (int32), mask, lse [B*T], loss [], B, n, T, V)
// loss = -sum(mask * log p(target)) / max(sum(mask), 1); a target outside [0, V) counts 0.
Napi::Value CrossEntropyForward(const Napi::CallbackInfo& info) {
  const float* logits = f32(info, 1);
  const int32_t* targets = i32(info, 2);
  const float* mask = f32(info, 3);
  float* lse = f32(info, 4);
  float* loss = f32(info, 5);
  const int64_t B = int_arg(info, 6), n = int_arg(info, 7), T = int_arg(info, 8), V = int_arg(info, 9);
  parallel_for(B * T, grain_rows(V), [&](int64_t a, int64_t b) {
    for (int64_t r = a; r < b; ++r) lse[r] = log_sum_exp(text_row(logits, r / T, r % T, n, T, V), V);
  });
  double total = 0, count = 0;
  for (int64_t r = 0; r < B * T; ++r) {
    count += mask[r];
    const int32_t tg = targets[r];
    if (tg < 0 || tg >= V) continue;
    total += static_cast<double>(mask[r]) * (text_row(logits, r / T, r % T, n, T, V)[tg] - lse[r]);
  }
  loss[0] = static_cast<float>(-total / std::max(count, 1.0));
  return info.Env().Undefined();
}

// (heap, logits, targets, mask, lse, dloss [], dlogits [B, n, V], B, n, T, V)
// dlogits = dloss * mask / max(sum(mask), 1) * (softmax - onehot) on text rows, 0 elsewhere.
Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  const float* logits = f32(info, 1);
  const int32_t* targets = i32(info, 2);
  const float* mask = f32(info, 3);
  const float* lse = f32(info, 4);
  const float dloss = *f32(info, 5);
  float* dlogits = f32(info, 6);
  const int64_t B = int_arg(info, 7), n = int_arg(info, 8), T = int_arg(info, 9), V = int_arg(info, 10);
  double count = 0;
  for (int64_t r = 0; r < B * T; ++r) count += mask[r];
  const float k = static_cast<float>(dloss / std::max(count, 1.0));
  parallel_for(B * n, grain_rows(V), [&](int64_t a, int64_t b) {
    for (int64_t row = a; row < b; ++row) {
      float* out = dlogits + row * V;
      const int64_t bi = row / n, pos = row % n, t = pos - (n - T);
      const int64_t r = bi * T + t;
      const int32_t tg = t >= 0 ? targets[r] : -1;
      if (t < 0 || tg < 0 || tg >= V || mask[r] == 0.f) {
        std::fill(out, out + V, 0.f);
        continue;
      }
      const float* in = logits + row * V;
      const float w = k * mask[r], l = lse[r];
      for (int64_t c = 0; c < V; ++c) out[c] = w * fexp(in[c] - l);
      out[tg] -= w;
    }
  });
  return info.Env().Undefined();
}

}  // namespace

VLMC_EXPORT("softmaxForward", SoftmaxForward);
VLMC_EXPORT("softmaxBackward", SoftmaxBackward);
VLMC_EXPORT("crossEntropyForward", CrossEntropyForward);
VLMC_EXPORT("crossEntropyBackward", CrossEntropyBackward);

}  // namespace vlmc
