// The GEMM's JavaScript face: matmul() on byte offsets into the wasm heap (registry.h's
// convention), with its arguments checked so that a wrong offset is an exception, not a crash;
// setIsa() for tests and benchmarks.
#include <napi.h>

#include <string>

#include "gemm.h"
#include "registry.h"

namespace vlmc {
namespace {

Napi::Value fail(const Napi::CallbackInfo& info, const char* message) {
  Napi::RangeError::New(info.Env(), message).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

/** Whether `floats` floats at byte offset info[arg] lie inside the heap. */
bool inside(const Napi::CallbackInfo& info, size_t arg, int64_t floats) {
  const int64_t off = int_arg(info, arg);
  const int64_t len = static_cast<int64_t>(info[0].As<Napi::ArrayBuffer>().ByteLength());
  return off >= 0 && floats >= 0 && off % 4 == 0 && off + 4 * floats <= len;
}

/**
 * matmul(heap, aOff, bOff, outOff, batch, batchA, batchB, m, n, k, transA, transB, biasOff,
 * act, alpha): out[batch, m, n] = op(a) op(b) (+ bias[n] when biasOff >= 0), then act
 * (0 linear, 1 relu, 2 relu6, 3 leakyrelu with slope alpha).
 */
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  if (info.Length() < 15 || !info[0].IsArrayBuffer()) return fail(info, "matmul: expected (heap, a, b, out, batch, batchA, batchB, m, n, k, transA, transB, bias, act, alpha)");
  for (size_t i = 1; i < 15; ++i)
    if (!info[i].IsNumber() && !info[i].IsBoolean()) return fail(info, "matmul: arguments 1-14 must be numbers");
  Gemm g;
  g.batch = int_arg(info, 4);
  g.batchA = int_arg(info, 5);
  g.batchB = int_arg(info, 6);
  g.m = int_arg(info, 7);
  g.n = int_arg(info, 8);
  g.k = int_arg(info, 9);
  g.transA = info[10].ToBoolean().Value();
  g.transB = info[11].ToBoolean().Value();
  const int64_t act = int_arg(info, 13);
  g.alpha = static_cast<float>(num_arg(info, 14));
  if (g.batch < 0 || g.m < 0 || g.n < 0 || g.k < 0) return fail(info, "matmul: negative size");
  if ((g.batchA != 1 && g.batchA != g.batch) || (g.batchB != 1 && g.batchB != g.batch)) return fail(info, "matmul: batchA and batchB must be 1 or batch");
  if (act < 0 || act > 3) return fail(info, "matmul: unknown activation");
  g.act = static_cast<Act>(act);
  if (!inside(info, 1, g.batchA * g.m * g.k) || !inside(info, 2, g.batchB * g.k * g.n) || !inside(info, 3, g.batch * g.m * g.n))
    return fail(info, "matmul: an operand lies outside the heap");
  const bool has_bias = int_arg(info, 12) >= 0;
  if (has_bias && !inside(info, 12, g.n)) return fail(info, "matmul: the bias lies outside the heap");
  g.a = f32(info, 1);
  g.b = f32(info, 2);
  g.c = f32(info, 3);
  g.bias = has_bias ? f32(info, 12) : nullptr;
  sgemm(g);
  return info.Env().Undefined();
}

/** setIsa(name) -> the microkernel now in use; throws when this CPU or build lacks it. */
Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) return fail(info, "setIsa: expected a name (avx512, avx2, generic)");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!gemm_set_isa(name.c_str())) return fail(info, "setIsa: not available on this CPU or build");
  return Napi::String::New(info.Env(), gemm_isa());
}

}  // namespace

VLMC_EXPORT("matmul", Matmul);
VLMC_EXPORT("setIsa", SetIsa);

}  // namespace vlmc
