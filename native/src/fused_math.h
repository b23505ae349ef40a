// Scalar math the fused kernels share, written so that GCC vectorizes the loops that call it:
// no libm calls (std::exp and std::erf are opaque to the vectorizer), only arithmetic, compares
// and integer bit tricks. VLMC_CLONES compiles a loop for AVX-512, AVX2+FMA and baseline x86-64
// and picks one at load time, so the addon needs no -march flag and runs on any x86-64 CPU.
#pragma once
#include <cstdint>
#include <cstring>

// Every function after this line: float ops may be if-converted (which lets GCC vectorize loops
// with selects; no kernel here reads FP traps). sqrt vectorizes only with -fno-math-errno,
// which native/build.mjs passes (a pragma cannot turn errno off for it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VLMC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VLMC_CLONES
#endif
#define VLMC_INLINE static inline __attribute__((always_inline))

namespace vlmc {

/** e^x in float32 within ~2 ulp, for x in [-87.3, 88.7]; clamped outside (so ~1e-38 far below, never inf). */
VLMC_INLINE float fexp(float x) {
  x = x < -87.33654f ? -87.33654f : x;
  x = x > 88.72283f ? 88.72283f : x;
  // x = n ln2 + r, |r| <= ln2 / 2; n rounded with the 1.5 * 2^23 trick (no branch, no libm),
  // ln2 split in two so that n * ln2 is exact enough.
  const float n = (x * 1.44269504f + 12582912.f) - 12582912.f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  // e^r by its degree-6 Taylor polynomial (error < 2e-7 on |r| <= 0.347).
  float p = 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  // 2^n by building the exponent; n >= -126 keeps it normal.
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/** erf(x), Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7 (+ float rounding). */
VLMC_INLINE float ferf(float x) {
  const float a = __builtin_fabsf(x);
  float t = 1.f / (1.f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  float y = 1.f - p * t * fexp(-a * a);
  return __builtin_copysignf(y, x);
}

/** tanh(x) = 1 - 2 / (e^{2x} + 1), which saturates cleanly at +-1. */
VLMC_INLINE float ftanh(float x) { return 1.f - 2.f / (fexp(2.f * x) + 1.f); }

/** sqrt; it vectorizes when errno is off (-fno-math-errno). */
VLMC_INLINE float fsqrt(float x) { return __builtin_sqrtf(x); }

// Row reductions with 16 independent lanes: the vectorizer turns the lane loop into vector ops
// (a plain `m = max(m, x[i])` or `s += x[i]` loop stays scalar without -ffast-math, and its
// dependency chain is most of a short row's time). The summation order is lane-wise.
constexpr int kLanes = 16;

VLMC_INLINE float scaled_max(const float* x, int64_t n, float scale) {
  float acc[kLanes];
  for (int k = 0; k < kLanes; ++k) acc[k] = -__builtin_inff();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] = acc[k] > scale * x[i + k] ? acc[k] : scale * x[i + k];
  float m = -__builtin_inff();
  for (; i < n; ++i) m = m > scale * x[i] ? m : scale * x[i];
  for (int k = 0; k < kLanes; ++k) m = m > acc[k] ? m : acc[k];
  return m;
}

VLMC_INLINE float lane_sum(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += x[i + k];
  float s = 0.f;
  for (; i < n; ++i) s += x[i];
  for (int k = 0; k < kLanes; ++k) s += acc[k];
  return s;
}

VLMC_INLINE float lane_dot(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += a[i + k] * b[i + k];
  float s = 0.f;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int k = 0; k < kLanes; ++k) s += acc[k];
  return s;
}

/** sum((x - mu)^2), the second pass of a two-pass variance. */
VLMC_INLINE float lane_sq_dev(const float* x, int64_t n, float mu) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += (x[i + k] - mu) * (x[i + k] - mu);
  float s = 0.f;
  for (; i < n; ++i) s += (x[i] - mu) * (x[i] - mu);
  for (int k = 0; k < kLanes; ++k) s += acc[k];
  return s;
}

VLMC_INLINE float lane_dot3(const float* a, const float* b, const float* c, int64_t n) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) acc[k] += a[i + k] * b[i + k] * c[i + k];
  float s = 0.f;
  for (; i < n; ++i) s += a[i] * b[i] * c[i];
  for (int k = 0; k < kLanes; ++k) s += acc[k];
  return s;
}

}  // namespace vlmc
