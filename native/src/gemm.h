// Single-precision GEMM for the tfjs-wasm matmul kernels: C = op(A) op(B) (+ bias, activation),
// row-major, batched with tfjs's BatchMatMul batch broadcasting (a batch of 1 on either side is
// reused for every output matrix). Cache-blocked and multithreaded over output tiles; the inner
// microkernel is picked at run time (AVX-512, AVX2+FMA, or portable C++), so one binary runs on
// any x86-64 and the portable one builds anywhere.
#pragma once
#include <cstdint>

namespace vlmc {

/** The activations _FusedMatMul asks for that the epilogue applies; others fall back in JS. */
enum class Act : int { Linear = 0, Relu = 1, Relu6 = 2, LeakyRelu = 3 };

struct Gemm {
  int64_t batch = 1;   // output matrices
  int64_t batchA = 1;  // 1 or batch
  int64_t batchB = 1;  // 1 or batch
  int64_t m = 0, n = 0, k = 0;
  bool transA = false;  // A stored [k, m] instead of [m, k]
  bool transB = false;  // B stored [n, k] instead of [k, n]
  const float* a = nullptr;
  const float* b = nullptr;
  float* c = nullptr;              // [batch, m, n]
  const float* bias = nullptr;     // [n], added to every row, or null
  Act act = Act::Linear;
  float alpha = 0.f;               // LeakyRelu's slope
};

void sgemm(const Gemm& g);

/** The microkernel in use: "avx512", "avx2" or "generic". */
const char* gemm_isa();

/** Picks a microkernel by name (for tests and benchmarks); false when this CPU or build lacks it. */
bool gemm_set_isa(const char* name);

}  // namespace vlmc
