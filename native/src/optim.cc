// Optimizer updates in place on the wasm heap: one call per parameter instead of about twelve
// tfjs ops (each allocating a [params] tensor). The arithmetic follows runtime/optim.ts
// step by step in float32, with the same constants rounded to float32 where tfjs makes scalars,
// so the two paths agree to rounding.
#include <cmath>

#include "fused_math.h"
#include "parallel.h"
#include "registry.h"

namespace vlmc {
namespace {

// l2 and decay are 0 when unused: g + 0 p and p - 0 p are exact for finite p, and the loop
// stays branch-free (so it vectorizes).
struct AdamConsts {
  float b1, one_minus_b1, b2, one_minus_b2, c2, eps, step, l2, decay;
};

// PyTorch's Adam/AdamW:
//   g' = g + wd p (L2)                     m = b1 m + (1 - b1) g'     v = b2 v + (1 - b2) g'^2
//   p' = p - (lr / c1) m / (sqrt(v / c2) + eps)  [- lr wd p (decoupled, with the old p)]
VLMC_CLONES void adam_range(float* p, const float* g, float* m, float* v, int64_t n, AdamConsts k) {
  for (int64_t i = 0; i < n; ++i) {
    const float pi = p[i];
    const float gi = g[i] + pi * k.l2;
    const float mi = m[i] * k.b1 + gi * k.one_minus_b1;
    const float vi = v[i] * k.b2 + (gi * gi) * k.one_minus_b2;
    m[i] = mi;
    v[i] = vi;
    p[i] = (pi - (mi / (fsqrt(vi / k.c2) + k.eps)) * k.step) - pi * k.decay;
  }
}

// (heap, p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, decoupled, step)
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  float* p = f32(info, 1);
  const float* g = f32(info, 2);
  float* m = f32(info, 3);
  float* v = f32(info, 4);
  const int64_t n = int_arg(info, 5);
  const double lr = num_arg(info, 6), beta1 = num_arg(info, 7), beta2 = num_arg(info, 8), eps = num_arg(info, 9);
  const double wd = num_arg(info, 10);
  const bool decoupled = info[11].ToBoolean().Value();
  const double t = num_arg(info, 12);
  const double c1 = 1 - std::pow(beta1, t), c2 = 1 - std::pow(beta2, t);
  const AdamConsts k{static_cast<float>(beta1), static_cast<float>(1 - beta1), static_cast<float>(beta2),
                     static_cast<float>(1 - beta2), static_cast<float>(c2), static_cast<float>(eps),
                     static_cast<float>(lr / c1), decoupled ? 0.f : static_cast<float>(wd), decoupled ? static_cast<float>(lr * wd) : 0.f};
  parallel_for(n, 1 << 15, [&](int64_t a, int64_t b) { adam_range(p + a, g + a, m + a, v + a, b - a, k); });
  return info.Env().Undefined();
}

}  // namespace

VLMC_EXPORT("adamUpdate", AdamUpdate);

}  // namespace vlmc
