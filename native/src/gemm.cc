// The GEMM driver (gemm.h), blocked in the classic way: K in blocks of KC; per block, B's
// block is packed once into the microkernel's panel layout (gemm_kernels.h), then A in blocks
// of at most TM_MAX rows, each multiplied by every B panel. Packing is also where the four
// transpose combinations are absorbed: the microkernels see one layout only. Bias and
// activation are applied to each block once its sums are complete.
//
// Threads (parallel.h): many small matrices (attention's heads) go one per task; a large one is
// shared by all threads, which pack B's block together and then take row blocks of A (each
// packed once), split by columns too when there are fewer row blocks than threads.
#include "gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "gemm_kernels.h"
#include "parallel.h"

namespace vlmc {
namespace {

// Depth of one packed block: Bp's NR-wide panel (KC x NR floats, 32 KiB for AVX-512) stays in
// L1 while every MR-row panel of A streams past it from L2.
constexpr int64_t KC = 256;
// Most rows of A packed at once (MC x KC floats, in L2).
constexpr int64_t TM_MAX = 192;
// Below this much work per chunk, waking other threads costs more than it saves.
constexpr double MIN_FLOPS_PER_CHUNK = 4e6;

// ---- the portable microkernel: plain loops that the compiler vectorizes for the target ----

constexpr int G_MR = 4;
constexpr int G_NR = 16;

void generic_run(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc, int m, int n, bool accumulate) {
  float acc[G_MR][G_NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < G_MR; ++r) {
      const float a = ap[r];
      for (int j = 0; j < G_NR; ++j) acc[r][j] += a * bp[j];
    }
    ap += G_MR;
    bp += G_NR;
  }
  for (int r = 0; r < m; ++r) {
    float* row = c + r * ldc;
    if (accumulate)
      for (int j = 0; j < n; ++j) row[j] += acc[r][j];
    else
      for (int j = 0; j < n; ++j) row[j] = acc[r][j];
  }
}

const MicroKernel generic_kernel{"generic", G_MR, G_NR, generic_run};

// ---- choosing the microkernel ----

bool cpu_has(const char* isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx512") == 0) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return std::strcmp(isa, "generic") == 0;
}

const MicroKernel* by_name(const char* name) {
  if (!cpu_has(name)) return nullptr;
  if (std::strcmp(name, "avx512") == 0) return avx512_kernel();
  if (std::strcmp(name, "avx2") == 0) return avx2_kernel();
  if (std::strcmp(name, "generic") == 0) return &generic_kernel;
  return nullptr;
}

const MicroKernel*& active() {
  static const MicroKernel* k = [] {
    // VLMC_ISA picks a lesser kernel for comparisons; the best available one otherwise.
    if (const char* env = std::getenv("VLMC_ISA"))
      if (const MicroKernel* chosen = by_name(env)) return chosen;
    for (const char* name : {"avx512", "avx2"})
      if (const MicroKernel* chosen = by_name(name)) return chosen;
    return &generic_kernel;
  }();
  return k;
}

// ---- packing ----

/** rows [i0, i0+mb) x depth [p0, p0+kc) of op(A) into MR-row panels, zero padded. */
void pack_a(const Gemm& g, const float* a, int64_t i0, int64_t mb, int64_t p0, int64_t kc, int mr, float* out) {
  for (int64_t s = 0; s < mb; s += mr) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, mb - s));
    if (g.transA) {
      // A stored [k, m]: each k step is a contiguous run of rows.
      const float* src = a + p0 * g.m + i0 + s;
      for (int64_t p = 0; p < kc; ++p, out += mr, src += g.m) {
        int r = 0;
        for (; r < rows; ++r) out[r] = src[r];
        for (; r < mr; ++r) out[r] = 0.f;
      }
    } else {
      // A stored [m, k]: gather one element from each of the panel's rows per k step.
      const float* src = a + (i0 + s) * g.k + p0;
      for (int64_t p = 0; p < kc; ++p, out += mr) {
        int r = 0;
        for (; r < rows; ++r) out[r] = src[r * g.k + p];
        for (; r < mr; ++r) out[r] = 0.f;
      }
    }
  }
}

/** depth [p0, p0+kc) x columns [j0, j0+nb) of op(B) into NR-column panels, zero padded. */
void pack_b(const Gemm& g, const float* b, int64_t j0, int64_t nb, int64_t p0, int64_t kc, int nr, float* out) {
  for (int64_t s = 0; s < nb; s += nr) {
    const int cols = static_cast<int>(std::min<int64_t>(nr, nb - s));
    if (g.transB) {
      // B stored [n, k]: read each column's run of k, write it strided into the panel.
      const float* src = b + (j0 + s) * g.k + p0;
      if (cols < nr) std::memset(out, 0, sizeof(float) * kc * nr);
      for (int j = 0; j < cols; ++j) {
        const float* col = src + j * g.k;
        for (int64_t p = 0; p < kc; ++p) out[p * nr + j] = col[p];
      }
      out += kc * nr;
    } else {
      // B stored [k, n]: each k step is a contiguous run of columns.
      const float* src = b + p0 * g.n + j0 + s;
      for (int64_t p = 0; p < kc; ++p, out += nr, src += g.n) {
        int j = 0;
        for (; j < cols; ++j) out[j] = src[j];
        for (; j < nr; ++j) out[j] = 0.f;
      }
    }
  }
}

/** One thread's packing buffers, 64-byte aligned, grown on demand and kept. */
struct Scratch {
  float* data = nullptr;
  size_t capacity = 0;
  ~Scratch() { std::free(data); }
  float* get(size_t floats) {
    if (floats > capacity) {
      std::free(data);
      const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      capacity = data ? floats : 0;
    }
    return data;
  }
};

// A (per thread), B (per thread, for the serial path) and the B block that the threads of one
// parallel GEMM share (owned by the thread that called sgemm).
thread_local Scratch scratch_a, scratch_b, scratch_shared_b;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

inline float activate(float v, Act act, float alpha) {
  switch (act) {
    case Act::Relu: return v > 0.f ? v : 0.f;
    case Act::Relu6: return v > 0.f ? (v < 6.f ? v : 6.f) : 0.f;
    case Act::LeakyRelu: return v > 0.f ? v : alpha * v;
    default: return v;
  }
}

/** One output matrix's operands. */
struct Mats {
  const float* a;
  const float* b;
  float* c;
};

Mats mats(const Gemm& g, int64_t bi) {
  return {g.a + (g.batchA == 1 ? 0 : bi) * g.m * g.k, g.b + (g.batchB == 1 ? 0 : bi) * g.k * g.n, g.c + bi * g.m * g.n};
}

/** Bias and activation on C[i0:i0+mb, j0:j0+nb], once its sums are complete. */
void epilogue(const Gemm& g, float* c, int64_t i0, int64_t mb, int64_t j0, int64_t nb) {
  if (!g.bias && g.act == Act::Linear) return;
  for (int64_t i = i0; i < i0 + mb; ++i) {
    float* row = c + i * g.n;
    for (int64_t j = j0; j < j0 + nb; ++j) row[j] = activate(g.bias ? row[j] + g.bias[j] : row[j], g.act, g.alpha);
  }
}

/**
 * C[i0:i0+mb, j0:j0+nb] += packed A rows x packed B panels, for one depth block: `ap` holds the
 * rows' panels, `bp` the block's panels starting at column j0 (both kc deep).
 */
void compute(const Gemm& g, const MicroKernel& uk, const float* ap, const float* bp, float* c, int64_t i0, int64_t mb, int64_t j0, int64_t nb, int64_t kc, bool accumulate) {
  const int mr = uk.mr, nr = uk.nr;
  for (int64_t js = 0; js < nb; js += nr) {
    const int n = static_cast<int>(std::min<int64_t>(nr, nb - js));
    const float* bpanel = bp + js * kc;
    // The B panel (kc x nr) stays in L1 while the A panels stream past it.
    for (int64_t is = 0; is < mb; is += mr) {
      const int m = static_cast<int>(std::min<int64_t>(mr, mb - is));
      uk.run(kc, ap + is * kc, bpanel, c + (i0 + is) * g.n + j0 + js, g.n, m, n, accumulate);
    }
  }
}

/** A whole output matrix on the calling thread: for small products, one per task. */
void serial(const Gemm& g, const MicroKernel& uk, int64_t bi) {
  const Mats x = mats(g, bi);
  const int64_t kcap = std::min<int64_t>(KC, g.k);
  const int64_t mc = std::min<int64_t>(round_up(g.m, uk.mr), TM_MAX);
  float* bp = scratch_b.get(static_cast<size_t>(round_up(g.n, uk.nr) * kcap));
  float* ap = scratch_a.get(static_cast<size_t>(mc * kcap));
  for (int64_t p0 = 0; p0 < g.k; p0 += KC) {
    const int64_t kc = std::min<int64_t>(KC, g.k - p0);
    pack_b(g, x.b, 0, g.n, p0, kc, uk.nr, bp);
    for (int64_t i0 = 0; i0 < g.m; i0 += mc) {
      const int64_t mb = std::min<int64_t>(mc, g.m - i0);
      pack_a(g, x.a, i0, mb, p0, kc, uk.mr, ap);
      compute(g, uk, ap, bp, x.c, i0, mb, 0, g.n, kc, p0 > 0);
    }
  }
  epilogue(g, x.c, 0, g.m, 0, g.n);
}

/**
 * One large output matrix on every thread. Per depth block: the threads pack B's block
 * together into one shared buffer, then each task packs its own rows of A and multiplies them
 * by a range of B's panels. Tasks are row blocks (A is packed once), split further by columns
 * only when there are too few row blocks to go round.
 */
void parallel(const Gemm& g, const MicroKernel& uk, int64_t bi) {
  const Mats x = mats(g, bi);
  const int threads = num_threads();
  const int64_t kcap = std::min<int64_t>(KC, g.k);
  int64_t row_blocks = std::max<int64_t>(ceil_div(g.m, TM_MAX), 2 * threads);
  const int64_t mc = std::max<int64_t>(round_up(ceil_div(g.m, row_blocks), uk.mr), uk.mr);
  row_blocks = ceil_div(g.m, mc);
  const int64_t panels = ceil_div(g.n, uk.nr);
  const int64_t col_chunks = std::min<int64_t>(panels, ceil_div(2 * threads, row_blocks));
  float* bp = scratch_shared_b.get(static_cast<size_t>(panels * uk.nr * kcap));
  for (int64_t p0 = 0; p0 < g.k; p0 += KC) {
    const int64_t kc = std::min<int64_t>(KC, g.k - p0);
    const bool last = p0 + KC >= g.k;
    parallel_for(panels, 4, [&](int64_t begin, int64_t end) {
      const int64_t j0 = begin * uk.nr;
      pack_b(g, x.b, j0, std::min(end * uk.nr, g.n) - j0, p0, kc, uk.nr, bp + j0 * kc);
    });
    parallel_for(row_blocks * col_chunks, 1, [&](int64_t begin, int64_t end) {
      float* ap = scratch_a.get(static_cast<size_t>(mc * kc));
      for (int64_t t = begin; t < end; ++t) {
        const int64_t i0 = (t / col_chunks) * mc, mb = std::min(mc, g.m - i0);
        const int64_t ch = t % col_chunks;
        const int64_t j0 = panels * ch / col_chunks * uk.nr, j1 = std::min(panels * (ch + 1) / col_chunks * uk.nr, g.n);
        pack_a(g, x.a, i0, mb, p0, kc, uk.mr, ap);
        compute(g, uk, ap, bp + j0 * kc, x.c, i0, mb, j0, j1 - j0, kc, p0 > 0);
        if (last) epilogue(g, x.c, i0, mb, j0, j1 - j0);
      }
    });
  }
}

/** Products of at most this many rows skip packing (small_rows). */
constexpr int64_t SMALL_M = 4;

/**
 * C[i0:i0+mb...] for a product of at most SMALL_M rows (a decoding step's one position per row):
 * packing B would cost more than the product, which only streams B once, so each task reads its
 * columns of B straight and keeps all the rows' sums for them in `acc`. Columns [j0, j1).
 */
void small_rows(const Gemm& g, const Mats& x, int64_t j0, int64_t j1) {
  const int64_t m = g.m, k = g.k, n = g.n;
  float acc[SMALL_M][256];
  for (int64_t c0 = j0; c0 < j1; c0 += 256) {
    const int64_t cw = std::min<int64_t>(256, j1 - c0);
    for (int64_t i = 0; i < m; ++i) std::memset(acc[i], 0, sizeof(float) * cw);
    if (!g.transB) {
      // B is [k, n]: row p of B, once, for every row of A.
      for (int64_t p = 0; p < k; ++p) {
        const float* brow = x.b + p * n + c0;
        for (int64_t i = 0; i < m; ++i) {
          const float ai = g.transA ? x.a[p * m + i] : x.a[i * k + p];
          float* out = acc[i];
          for (int64_t j = 0; j < cw; ++j) out[j] += ai * brow[j];
        }
      }
    } else {
      // B is [n, k]: each output is a dot product of A's row with B's row j.
      for (int64_t j = 0; j < cw; ++j) {
        const float* bcol = x.b + (c0 + j) * k;
        for (int64_t i = 0; i < m; ++i) {
          float sum = 0.f;
          for (int64_t p = 0; p < k; ++p) sum += (g.transA ? x.a[p * m + i] : x.a[i * k + p]) * bcol[p];
          acc[i][j] = sum;
        }
      }
    }
    for (int64_t i = 0; i < m; ++i) std::memcpy(x.c + i * n + c0, acc[i], sizeof(float) * cw);
  }
  epilogue(g, x.c, 0, m, j0, j1 - j0);
}

}  // namespace

void sgemm(const Gemm& g) {
  if (g.batch <= 0 || g.m <= 0 || g.n <= 0) return;
  if (g.k == 0) {
    for (int64_t bi = 0; bi < g.batch; ++bi) {
      float* c = g.c + bi * g.m * g.n;
      std::memset(c, 0, sizeof(float) * g.m * g.n);
      epilogue(g, c, 0, g.m, 0, g.n);
    }
    return;
  }
  if (g.m <= SMALL_M) {
    // Split the columns over the threads when there is enough to share, in whole cache lines.
    const int64_t per = std::max<int64_t>(64, (g.n / (2 * num_threads()) + 15) / 16 * 16);
    const int64_t chunks = (g.n + per - 1) / per;
    for (int64_t bi = 0; bi < g.batch; ++bi) {
      const Mats x = mats(g, bi);
      if (chunks == 1 || static_cast<double>(g.m) * g.n * g.k < MIN_FLOPS_PER_CHUNK) {
        small_rows(g, x, 0, g.n);
      } else {
        parallel_for(chunks, 1, [&](int64_t begin, int64_t end) {
          for (int64_t c = begin; c < end; ++c) small_rows(g, x, c * per, std::min(g.n, (c + 1) * per));
        });
      }
    }
    return;
  }
  const MicroKernel& uk = *active();
  const double flops = 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k);
  const int threads = num_threads();
  // Many small matrices (attention's heads): one matrix per task. A few large ones: all the
  // threads on each in turn.
  if (threads == 1 || flops * threads < 4 * MIN_FLOPS_PER_CHUNK || (g.batch >= 4 * threads && flops < 64 * MIN_FLOPS_PER_CHUNK)) {
    const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(MIN_FLOPS_PER_CHUNK / flops)));
    parallel_for(g.batch, grain, [&](int64_t begin, int64_t end) {
      for (int64_t bi = begin; bi < end; ++bi) serial(g, uk, bi);
    });
    return;
  }
  for (int64_t bi = 0; bi < g.batch; ++bi) parallel(g, uk, bi);
}

const char* gemm_isa() { return active()->name; }

bool gemm_set_isa(const char* name) {
  const MicroKernel* k = by_name(name);
  if (!k) return false;
  active() = k;
  return true;
}

}  // namespace vlmc
