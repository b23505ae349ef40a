// The contract between the GEMM driver (gemm.cc) and its per-ISA microkernels
// (gemm_avx512.cc, gemm_avx2.cc, built with those ISAs enabled, and the portable one in
// gemm.cc). A microkernel computes one MR x NR tile of C from packed panels: Ap holds MR rows
// of A k-major (Ap[p * MR + r]) and Bp NR columns of B k-major (Bp[p * NR + j]), both zero
// padded to full MR / NR, so the kernel never branches on edges inside its loop.
//
// These files include nothing but this header and <immintrin.h>: a C++ standard header
// included into a file compiled with -mavx512f could emit an AVX-512 copy of an inline
// function that the linker then picks for the whole addon.
#pragma once
#include <cstdint>

namespace vlmc {

struct MicroKernel {
  const char* name;
  int mr, nr;
  /** C[0:m, 0:n] = (accumulate ? C : 0) + Ap Bp over kc steps; m <= mr, n <= nr; ldc in floats. */
  void (*run)(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool accumulate);
};

/** Null when the file was built without that ISA (another architecture, or an old compiler). */
const MicroKernel* avx512_kernel();
const MicroKernel* avx2_kernel();

}  // namespace vlmc
