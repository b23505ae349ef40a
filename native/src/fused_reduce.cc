// Sums over leading axes: x [outer, inner] -> [inner]. This is the gradient of every bias add
// (dy summed over batch and positions); tfjs-wasm's Sum reduces only the innermost axis, so it
// transposes the whole gradient first and then sums. Split by column blocks, so every block
// is summed by one thread in row order and the result does not depend on the thread count.
#include <algorithm>

#include "fused_math.h"
#include "parallel.h"
#include "registry.h"

namespace vlmc {
namespace {

constexpr int64_t kBlock = 64;

VLMC_CLONES void sum_rows_block(const float* x, float* out, int64_t outer, int64_t inner, int64_t c0, int64_t c1) {
  float acc[kBlock] = {};
  const int64_t w = c1 - c0;
  for (int64_t r = 0; r < outer; ++r) {
    const float* row = x + r * inner + c0;
    for (int64_t c = 0; c < w; ++c) acc[c] += row[c];
  }
  for (int64_t c = 0; c < w; ++c) out[c0 + c] = acc[c];
}

// (heap, x, out, outer, inner)
Napi::Value SumLeading(const Napi::CallbackInfo& info) {
  const float* x = f32(info, 1);
  float* out = f32(info, 2);
  const int64_t outer = int_arg(info, 3), inner = int_arg(info, 4);
  const int64_t blocks = (inner + kBlock - 1) / kBlock;
  // A block of 64 columns over all rows is outer * 64 adds; a few thousand rows make one chunk.
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(outer * kBlock, 1));
  parallel_for(blocks, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) sum_rows_block(x, out, outer, inner, b * kBlock, std::min(inner, (b + 1) * kBlock));
  });
  return info.Env().Undefined();
}

}  // namespace

VLMC_EXPORT("sumLeading", SumLeading);

}  // namespace vlmc
