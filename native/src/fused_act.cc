// Element-wise activations that tfjs builds from many small ops: GELU (erf and tanh forms) and
// dropout. Each is one pass over the wasm heap. Dropout draws its keep mask from a counter-based
// hash of (seed, index), so the backward recomputes the mask instead of keeping it: a fused
// dropout saves nothing for its gradient.
#include <algorithm>
#include <cmath>

#include "fused_math.h"
#include "parallel.h"
#include "registry.h"

namespace vlmc {
namespace {

constexpr int64_t kGrain = 1 << 14;
constexpr float kSqrt1_2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1 / sqrt(2 pi)
constexpr float kSqrt2OverPi = 0.79788456080286536f;
constexpr float kTanhCubic = 0.044715f;

VLMC_CLONES void gelu_erf_fwd(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.f + ferf(x[i] * kSqrt1_2));
}

VLMC_CLONES void gelu_tanh_fwd(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.f + ftanh(kSqrt2OverPi * (v + kTanhCubic * v * v * v)));
  }
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x)
VLMC_CLONES void gelu_erf_bwd(const float* dy, const float* x, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    dx[i] = dy[i] * (0.5f * (1.f + ferf(v * kSqrt1_2)) + v * kInvSqrt2Pi * fexp(-0.5f * v * v));
  }
}

VLMC_CLONES void gelu_tanh_bwd(const float* dy, const float* x, float* dx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    const float t = ftanh(kSqrt2OverPi * (v + kTanhCubic * v * v * v));
    dx[i] = dy[i] * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * kSqrt2OverPi * (1.f + 3.f * kTanhCubic * v * v));
  }
}

VLMC_INLINE uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// y = x * keep / (1 - p): element i is kept when the top 24 bits of its hash, as a fraction of
// 2^24, are >= p. The same call is the backward (dy in, dx out) with the same seed.
VLMC_CLONES void dropout_range(const float* x, float* y, int64_t i0, int64_t i1, uint32_t threshold, float scale, uint32_t k1, uint32_t k2) {
  for (int64_t i = i0; i < i1; ++i) {
    const uint32_t h = fmix32(fmix32(static_cast<uint32_t>(i) ^ k1) + k2);
    y[i] = (h >> 8) >= threshold ? x[i] * scale : 0.f;
  }
}

// (heap, x, y, n, approximateTanh)
Napi::Value GeluForward(const Napi::CallbackInfo& info) {
  const float* x = f32(info, 1);
  float* y = f32(info, 2);
  const int64_t n = int_arg(info, 3);
  const bool tanh = info[4].ToBoolean().Value();
  parallel_for(n, kGrain, [&](int64_t a, int64_t b) { tanh ? gelu_tanh_fwd(x + a, y + a, b - a) : gelu_erf_fwd(x + a, y + a, b - a); });
  return info.Env().Undefined();
}

// (heap, dy, x, dx, n, approximateTanh)
Napi::Value GeluBackward(const Napi::CallbackInfo& info) {
  const float* dy = f32(info, 1);
  const float* x = f32(info, 2);
  float* dx = f32(info, 3);
  const int64_t n = int_arg(info, 4);
  const bool tanh = info[5].ToBoolean().Value();
  parallel_for(n, kGrain, [&](int64_t a, int64_t b) { tanh ? gelu_tanh_bwd(dy + a, x + a, dx + a, b - a) : gelu_erf_bwd(dy + a, x + a, dx + a, b - a); });
  return info.Env().Undefined();
}

// (heap, x, y, n, p, seed): seed is any integer below 2^53.
Napi::Value Dropout(const Napi::CallbackInfo& info) {
  const float* x = f32(info, 1);
  float* y = f32(info, 2);
  const int64_t n = int_arg(info, 3);
  const double p = num_arg(info, 4);
  const uint64_t seed = static_cast<uint64_t>(num_arg(info, 5));
  const uint32_t k1 = fmix32(static_cast<uint32_t>(seed) ^ 0x9e3779b9u);
  const uint32_t k2 = fmix32(static_cast<uint32_t>(seed >> 32) ^ k1 ^ 0x7f4a7c15u);
  const uint32_t threshold = static_cast<uint32_t>(std::min(16777216.0, std::ceil(p * 16777216.0)));
  const float scale = 1.f / static_cast<float>(1.0 - p);
  parallel_for(n, kGrain, [&](int64_t a, int64_t b) { dropout_range(x, y, a, b, threshold, scale, k1, k2); });
  return info.Env().Undefined();
}

}  // namespace

VLMC_EXPORT("geluForward", GeluForward);
VLMC_EXPORT("geluBackward", GeluBackward);
VLMC_EXPORT("dropout", Dropout);

}  // namespace vlmc
