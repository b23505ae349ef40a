// The module's entry point: exports every function the kernel files registered (registry.h),
// plus info(), which says what this build runs with: the GEMM microkernel chosen for this CPU,
// the pool's thread count and the compiler that built it (the loader and `vlmc backend` show it).
#include <napi.h>

#include "gemm.h"
#include "parallel.h"
#include "registry.h"

namespace vlmc {
namespace {

#if defined(__clang__)
constexpr const char* kCompiler = "clang " __clang_version__;
#elif defined(__GNUC__)
constexpr const char* kCompiler = "gcc " __VERSION__;
#else
constexpr const char* kCompiler = "unknown";
#endif

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("isa", gemm_isa());
  out.Set("threads", num_threads());
  out.Set("compiler", kCompiler);
  Napi::Array names = Napi::Array::New(env);
  uint32_t i = 0;
  for (const auto& entry : registry()) names.Set(i++, entry.first);
  out.Set("functions", names);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  for (const auto& entry : registry()) exports.Set(entry.first, Napi::Function::New(env, entry.second, entry.first));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  return exports;
}

}  // namespace
}  // namespace vlmc

// NODE_API_MODULE pastes the function's name into an identifier: it wants an unqualified one.
static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return vlmc::Init(env, exports); }

NODE_API_MODULE(vlmc_native, InitModule)
