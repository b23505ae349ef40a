// How the addon's functions are exported: each source file registers its own functions with
// VLMC_EXPORT, and the module's Init (addon.cc) exports everything registered, so adding a
// kernel touches one file. Every kernel takes the wasm heap's ArrayBuffer first, then byte
// offsets into it (numbers), then sizes and scalars: it reads and writes tfjs-wasm tensors in
// place. The JS side allocates outputs before it reads the heap's buffer (an allocation may grow
// the heap and replace the buffer).
#pragma once
#include <napi.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace vlmc {

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

inline std::vector<std::pair<const char*, Fn>>& registry() {
  static std::vector<std::pair<const char*, Fn>> r;
  return r;
}

struct Register {
  Register(const char* name, Fn fn) { registry().emplace_back(name, fn); }
};

/** The float32 at byte offset info[arg] of the heap info[0]. */
inline float* f32(const Napi::CallbackInfo& info, size_t arg) {
  auto heap = info[0].As<Napi::ArrayBuffer>();
  return reinterpret_cast<float*>(static_cast<uint8_t*>(heap.Data()) + info[arg].As<Napi::Number>().Int64Value());
}

inline int32_t* i32(const Napi::CallbackInfo& info, size_t arg) {
  auto heap = info[0].As<Napi::ArrayBuffer>();
  return reinterpret_cast<int32_t*>(static_cast<uint8_t*>(heap.Data()) + info[arg].As<Napi::Number>().Int64Value());
}

inline int64_t int_arg(const Napi::CallbackInfo& info, size_t arg) { return info[arg].As<Napi::Number>().Int64Value(); }
inline double num_arg(const Napi::CallbackInfo& info, size_t arg) { return info[arg].As<Napi::Number>().DoubleValue(); }

}  // namespace vlmc

#define VLMC_CONCAT_(a, b) a##b
#define VLMC_CONCAT(a, b) VLMC_CONCAT_(a, b)
/** VLMC_EXPORT("layerNormForward", LayerNormForward); at file scope. */
#define VLMC_EXPORT(name, fn) static ::vlmc::Register VLMC_CONCAT(vlmc_register_, __LINE__)(name, fn)
