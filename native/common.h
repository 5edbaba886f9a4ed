// Shared by every native file: the tensor wrapper, the error guard and argument
// conversion. Kept free of torch/torch.h (ATen is enough) to keep builds short.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include "compat.h"

#include <atomic>
#include <optional>
#include <string>
#include <vector>

namespace tn {

// Per-environment state (one per main thread or worker thread), so the addon is
// safe to load in several worker_threads at once.
struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::FunctionReference generatorCtor;
  Napi::FunctionReference torchError;  // the TS TorchError class, once registered
};

AddonData& Data(Napi::Env env);

// Process-wide accounting for memory(): wrappers alive and bytes they report.
extern std::atomic<int64_t> gLiveTensors;
extern std::atomic<int64_t> gLiveBytes;

// A tensor handle is a plain JS object, type-tagged and napi_wrap'ed around a
// TensorBox. Not an ObjectWrap: ObjectWrap keeps a napi_ref per object whose
// deletion Node defers to the event loop, so a synchronous training loop (which
// never yields) would pile up hundreds of bytes per tensor. A runtime-owned wrap
// with a basic finalizer is freed inside the GC itself.
struct TensorBox {
  at::Tensor t;
  int64_t reported = 0;  // bytes told to V8 via AdjustExternalMemory
  bool cpu = true;
};

class TensorWrap {
 public:
  static Napi::Object New(Napi::Env env, at::Tensor t);
  static bool Is(const Napi::Value& v);
  // The box behind a handle (after Is()); never null.
  static TensorBox* Box(const Napi::Value& v);
  // Drops the tensor (dispose); the box lives until the handle is collected.
  static void Release(napi_env env, TensorBox* box);
};

class GeneratorWrap : public Napi::ObjectWrap<GeneratorWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  static bool Is(const Napi::Value& v);
  explicit GeneratorWrap(const Napi::CallbackInfo& info);
  at::Generator gen;

 private:
  Napi::Value ManualSeed(const Napi::CallbackInfo& info);
  Napi::Value InitialSeed(const Napi::CallbackInfo& info);
  Napi::Value Seed(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
};

// ---- errors ---------------------------------------------------------------

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);
[[noreturn]] void ThrowTorch(Napi::Env env, const std::string& msg);
std::string Describe(const Napi::Value& v);

// Every exported function runs inside this guard: libtorch's c10::Error becomes
// a TorchError carrying libtorch's message without the C++ backtrace. Some libtorch
// checks throw plain std::runtime_error / std::logic_error (Debian's 1.13 does for
// view's shape check), so those are libtorch's errors too; anything else (bad_alloc)
// becomes a plain Error. Nothing may unwind into Node and abort.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    ThrowTorch(info.Env(), e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    ThrowTorch(info.Env(), e.what());
  } catch (const std::logic_error& e) {
    ThrowTorch(info.Env(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New<Guarded<F>>(env, name));
}

// ---- argument conversion (names appear in the messages) -------------------

at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* name);
c10::optional<at::Tensor> ArgOptTensor(const Napi::CallbackInfo& info, size_t i, const char* name);
std::vector<at::Tensor> ArgTensorList(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t dflt);
c10::optional<int64_t> ArgOptInt(const Napi::CallbackInfo& info, size_t i, const char* name);
uint64_t ArgSeed(const Napi::CallbackInfo& info, size_t i, const char* name);
double ArgDouble(const Napi::CallbackInfo& info, size_t i, const char* name);
double ArgDouble(const Napi::CallbackInfo& info, size_t i, const char* name, double dflt);
bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name, bool dflt);
std::vector<int64_t> ArgIntList(const Napi::CallbackInfo& info, size_t i, const char* name);
c10::optional<std::vector<int64_t>> ArgOptIntList(const Napi::CallbackInfo& info, size_t i, const char* name);
at::Scalar ArgScalar(const Napi::CallbackInfo& info, size_t i, const char* name);
bool IsScalar(const Napi::Value& v);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name);
at::ScalarType ArgDtype(const Napi::CallbackInfo& info, size_t i, const char* name);
c10::optional<at::ScalarType> ArgOptDtype(const Napi::CallbackInfo& info, size_t i, const char* name);
at::Device ArgDevice(const Napi::CallbackInfo& info, size_t i, const char* name);
at::MemoryFormat ArgMemoryFormat(const Napi::CallbackInfo& info, size_t i, const char* name, at::MemoryFormat dflt);
c10::optional<at::Generator> ArgOptGenerator(const Napi::CallbackInfo& info, size_t i, const char* name);
int64_t ArgReduction(const Napi::CallbackInfo& info, size_t i, const char* name);
bool IsNullish(const Napi::CallbackInfo& info, size_t i);

at::ScalarType ParseDtype(Napi::Env env, const std::string& s, const char* name);
const char* DtypeName(at::ScalarType t);
std::string DeviceName(const at::Device& d);
at::TensorOptions Options(const Napi::CallbackInfo& info, size_t dtypeIdx, size_t deviceIdx,
                          at::ScalarType dflt);

inline Napi::Value Wrap(Napi::Env env, at::Tensor t) { return TensorWrap::New(env, std::move(t)); }
Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts);
Napi::Array IntArray(Napi::Env env, at::IntArrayRef v);

// Registration, one per native file.
void RegisterTensor(Napi::Env env, Napi::Object exports);
void RegisterFactories(Napi::Env env, Napi::Object exports);
void RegisterMath(Napi::Env env, Napi::Object exports);
void RegisterShape(Napi::Env env, Napi::Object exports);
void RegisterNN(Napi::Env env, Napi::Object exports);
void RegisterLinear(Napi::Env env, Napi::Object exports);
void RegisterAllocator(Napi::Env env, Napi::Object exports);
// Frees the CPU caching allocator's free blocks (allocator.cc); returns the bytes released.
size_t EmptyCpuCache();
void RegisterAutograd(Napi::Env env, Napi::Object exports);
void RegisterDevice(Napi::Env env, Napi::Object exports);
void RegisterDistributed(Napi::Env env, Napi::Object exports);

}  // namespace tn
