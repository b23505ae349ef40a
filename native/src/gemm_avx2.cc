// The AVX2 + FMA GEMM microkernel: a 6 x 16 tile of C in 12 ymm accumulators (two vectors of 8
// columns per row), leaving room for the two B vectors and the A broadcast in the 16 registers.
// Compiled with -mavx2 -mfma (build.mjs gives *_avx2.cc those flags) and only called after a
// CPU check (gemm.cc).
#include "gemm_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

namespace vlmc {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;

inline __m256i lanes(int n) {
  // Lane i is on when i < n (n clamped to 0..8): the mask maskload/maskstore take.
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n < 0 ? 0 : n > 8 ? 8 : n), idx);
}

void run(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool accumulate) {
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_loadu_ps(bp);
    const __m256 b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(ap + r);
      acc0[r] = _mm256_fmadd_ps(a, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(a, b1, acc1[r]);
    }
    ap += MR;
    bp += NR;
  }
  if (n == NR) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      if (r >= m) break;
      float* row = c + r * ldc;
      __m256 v0 = acc0[r], v1 = acc1[r];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(row));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, v0);
      _mm256_storeu_ps(row + 8, v1);
    }
    return;
  }
  const __m256i k0 = lanes(n), k1 = lanes(n - 8);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (r >= m) break;
    float* row = c + r * ldc;
    __m256 v0 = acc0[r], v1 = acc1[r];
    if (accumulate) {
      v0 = _mm256_add_ps(v0, _mm256_maskload_ps(row, k0));
      v1 = _mm256_add_ps(v1, _mm256_maskload_ps(row + 8, k1));
    }
    _mm256_maskstore_ps(row, k0, v0);
    _mm256_maskstore_ps(row + 8, k1, v1);
  }
}

const MicroKernel kernel{"avx2", MR, NR, run};

}  // namespace

const MicroKernel* avx2_kernel() { return &kernel; }

}  // namespace vlmc

#else

namespace vlmc {
const MicroKernel* avx2_kernel() { return nullptr; }
}  // namespace vlmc

#endif
