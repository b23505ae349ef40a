// Layer norm over the last dim, forward and backward, in one pass each over the wasm heap.
// The forward saves the per-row mean and 1/sqrt(var + eps) so that the backward needs only x,
// those two and the gain (the composite tfjs path keeps about eight [rows, cols] intermediates).
// The variance is two-pass (mean first), so rows with a large mean keep their digits.
#include <algorithm>
#include <vector>

#include "fused_math.h"
#include "parallel.h"
#include "registry.h"

namespace vlmc {
namespace {

// Rows per chunk of the gain/bias gradient: the partial sums are per chunk, not per thread, so
// the result does not depend on the thread count.
constexpr int64_t kRowsPerPartial = 32;

VLMC_CLONES void ln_forward_rows(const float* x, const float* g, const float* b, float* y, float* mean, float* rstd, int64_t r0, int64_t r1, int64_t cols, float eps) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const float mu = lane_sum(xr, cols) / static_cast<float>(cols);
    const float rs = 1.f / fsqrt(lane_sq_dev(xr, cols, mu) / static_cast<float>(cols) + eps);
    mean[r] = mu;
    rstd[r] = rs;
    if (b) {
      for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu) * rs * g[c] + b[c];
    } else {
      for (int64_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu) * rs * g[c];
    }
  }
}

// dx = rstd * (dy g - mean(dy g) - xhat * mean(dy g xhat)); the gain/bias gradients of these
// rows are added into dg, db (this chunk's partial sums).
VLMC_CLONES void ln_backward_rows(const float* dy, const float* x, const float* mean, const float* rstd, const float* g, float* dx, float* dg, float* db, int64_t r0, int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* dyr = dy + r * cols;
    const float* xr = x + r * cols;
    float* dxr = dx + r * cols;
    const float mu = mean[r], rs = rstd[r];
    // xhat goes through dx (its last loop overwrites it), so that every loop vectorizes.
    for (int64_t c = 0; c < cols; ++c) {
      const float xh = (xr[c] - mu) * rs;
      dxr[c] = xh;
      dg[c] += dyr[c] * xh;
      db[c] += dyr[c];
    }
    const float ma = lane_dot(dyr, g, cols) / static_cast<float>(cols);      // mean(dy g)
    const float mb = lane_dot3(dyr, g, dxr, cols) / static_cast<float>(cols); // mean(dy g xhat)
    for (int64_t c = 0; c < cols; ++c) dxr[c] = rs * (dyr[c] * g[c] - ma - dxr[c] * mb);
  }
}

float* optional_f32(const Napi::CallbackInfo& info, size_t arg) { return int_arg(info, arg) < 0 ? nullptr : f32(info, arg); }

// (heap, x, gain, bias | -1, y, mean, rstd, rows, cols, eps)
Napi::Value LayerNormForward(const Napi::CallbackInfo& info) {
  const float* x = f32(info, 1);
  const float* g = f32(info, 2);
  const float* b = optional_f32(info, 3);
  float* y = f32(info, 4);
  float* mean = f32(info, 5);
  float* rstd = f32(info, 6);
  const int64_t rows = int_arg(info, 7), cols = int_arg(info, 8);
  const float eps = static_cast<float>(num_arg(info, 9));
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)), [&](int64_t r0, int64_t r1) { ln_forward_rows(x, g, b, y, mean, rstd, r0, r1, cols, eps); });
  return info.Env().Undefined();
}

// (heap, dy, x, mean, rstd, gain, dx, dgain, dbias, rows, cols)
Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  const float* dy = f32(info, 1);
  const float* x = f32(info, 2);
  const float* mean = f32(info, 3);
  const float* rstd = f32(info, 4);
  const float* g = f32(info, 5);
  float* dx = f32(info, 6);
  float* dg = f32(info, 7);
  float* db = f32(info, 8);
  const int64_t rows = int_arg(info, 9), cols = int_arg(info, 10);
  const int64_t parts = (rows + kRowsPerPartial - 1) / kRowsPerPartial;
  std::vector<float> partial(static_cast<size_t>(parts * 2 * cols), 0.f);
  parallel_for(parts, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* pg = partial.data() + p * 2 * cols;
      const int64_t r1 = std::min(rows, (p + 1) * kRowsPerPartial);
      ln_backward_rows(dy, x, mean, rstd, g, dx, pg, pg + cols, p * kRowsPerPartial, r1, cols);
    }
  });
  for (int64_t c = 0; c < cols; ++c) dg[c] = db[c] = 0.f;
  for (int64_t p = 0; p < parts; ++p) {
    const float* pg = partial.data() + p * 2 * cols;
    for (int64_t c = 0; c < cols; ++c) {
      dg[c] += pg[c];
      db[c] += pg[cols + c];
    }
  }
  return info.Env().Undefined();
}

}  // namespace

VLMC_EXPORT("layerNormForward", LayerNormForward);
VLMC_EXPORT("layerNormBackward", LayerNormBackward);

}  // namespace vlmc
