// The AVX-512 GEMM microkernel: a 12 x 32 tile of C in 24 zmm accumulators (two vectors of 16
// columns per row), one broadcast of A and two loads of B per k step; narrower variants for
// edge tiles. Compiled with -mavx512f
// (build.mjs gives *_avx512.cc those flags) and only called after a CPU check (gemm.cc).
#include "gemm_kernels.h"

#if defined(__AVX512F__)
#include <immintrin.h>

namespace vlmc {
namespace {

constexpr int MR = 12;
constexpr int NR = 32;

// R rows (R <= MR; the packed A panel is MR wide whatever R is), and 16 or 32 columns: edge
// tiles of small matrices (attention's 37 x 37) then skip most of the padding's arithmetic.
template <int R, bool Half>
inline void tile(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool accumulate) {
  __m512 acc0[R], acc1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_loadu_ps(bp);
    const __m512 b1 = Half ? b0 : _mm512_loadu_ps(bp + 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(ap[r]);
      acc0[r] = _mm512_fmadd_ps(a, b0, acc0[r]);
      if (!Half) acc1[r] = _mm512_fmadd_ps(a, b1, acc1[r]);
    }
    ap += MR;
    bp += NR;
  }
  // Columns past n are masked off; rows past m are computed on zero padding and dropped.
  const __mmask16 k0 = n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1u);
  const __mmask16 k1 = n >= 32 ? static_cast<__mmask16>(0xFFFF) : n <= 16 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << (n - 16)) - 1u);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (r >= m) break;
    float* row = c + r * ldc;
    __m512 v0 = acc0[r];
    if (accumulate) v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0, row));
    _mm512_mask_storeu_ps(row, k0, v0);
    if (!Half) {
      __m512 v1 = acc1[r];
      if (accumulate) v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1, row + 16));
      _mm512_mask_storeu_ps(row + 16, k1, v1);
    }
  }
}

template <bool Half>
void rows(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool accumulate) {
  if (m <= 4) tile<4, Half>(kc, ap, bp, c, ldc, m, n, accumulate);
  else if (m <= 8) tile<8, Half>(kc, ap, bp, c, ldc, m, n, accumulate);
  else tile<MR, Half>(kc, ap, bp, c, ldc, m, n, accumulate);
}

void run(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool accumulate) {
  if (n <= 16) rows<true>(kc, ap, bp, c, ldc, m, n, accumulate);
  else rows<false>(kc, ap, bp, c, ldc, m, n, accumulate);
}

const MicroKernel kernel{"avx512", MR, NR, run};

}  // namespace

const MicroKernel* avx512_kernel() { return &kernel; }

}  // namespace vlmc

#else

namespace vlmc {
const MicroKernel* avx512_kernel() { return nullptr; }
}  // namespace vlmc

#endif
