// Shared by every native file: the tensor wrapper, the error guard and argument
// conversion. Kept free of torch/torch.h (ATen is enough) to keep builds short.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include "compat.h"

#include <atomic>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace tn {

// Per-environment state (one per main thread or worker thread), so the addon is
// safe to load in several worker_threads at once.
struct AddonData {
  Napi::FunctionReference generatorCtor;
  Napi::FunctionReference torchError;  // the TS TorchError class, once registered
  // When set (lib/native.ts does, through setReturnErrors), a failed call returns its
  // Error instead of throwing it, and lib/native.ts's wrappers throw it from JS. Node
  // (20.x) keeps a native callback's exception in the env while it rethrows it; a GC
  // inside that rethrow runs our tensors' GC-time finalizers, and Node then mistakes
  // the stored exception for the finalizer's and calls into JS during GC: a V8 fatal
  // error (AllowJavascriptExecution). A returned value never takes that path.
  // The value returned is `new errorBox(error)`, a class of lib/native.ts's realm, so
  // that its wrappers can tell it from a result with one instanceof (under jest the
  // addon's Error is another realm's).
  Napi::FunctionReference errorBox;
};

AddonData& Data(Napi::Env env);

// Process-wide accounting for memory(): wrappers alive and bytes they report.
extern std::atomic<int64_t> gLiveTensors;
extern std::atomic<int64_t> gLiveBytes;

// A tensor handle is a type-tagged napi_external holding a TensorBox. An external
// costs about half of a tagged, napi_wrap'ed object (no constructor call, no
// hidden-class transitions for the private tag and wrap properties): about 1 us less
// for every tensor an op returns. Not an ObjectWrap: ObjectWrap keeps a napi_ref per
// object whose deletion Node defers to the event loop, so a synchronous training
// loop (which never yields) would pile up hundreds of bytes per tensor. The
// external's runtime-owned finalizer is a basic one, run inside the GC itself.
struct TensorBox {
  at::Tensor t;
  int64_t reported = 0;  // bytes told to V8 via AdjustExternalMemory
  bool cpu = true;
};

class TensorWrap {
 public:
  static Napi::Value New(Napi::Env env, at::Tensor t);
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

  // Reached through guarded prototype functions that check `this` (factories.cc).
  Napi::Value ManualSeed(const Napi::CallbackInfo& info);
  Napi::Value InitialSeed(const Napi::CallbackInfo& info);
  Napi::Value Seed(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
};

// ---- errors ---------------------------------------------------------------

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);
// A value of the right type out of its range (a negative size, a zero stride, a list of the wrong length).
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& msg);
[[noreturn]] void ThrowTorch(Napi::Env env, const std::string& msg);
std::string Describe(const Napi::Value& v);

// Makes `err` (or, when null or unusable, a plain Error) the pending JS exception of
// the current call and returns the empty value the call then gives back; with
// AddonData::returnErrors, returns the Error instead (lib/native.ts throws it). While the
// environment is being torn down (worker.terminate(), process.exit() in a worker or
// while workers run) nothing can be thrown into it any more: then the call just
// returns empty. Never throws.
Napi::Value RaiseInJs(napi_env env, const Napi::Error* err) noexcept;

// Every native callback runs inside this guard: libtorch's c10::Error becomes a
// TorchError carrying libtorch's message without the C++ backtrace. Some libtorch
// checks throw plain std::runtime_error / std::logic_error (Debian's 1.13 does for
// view's shape check), so those are libtorch's errors too; anything else (bad_alloc)
// becomes a plain Error. The error is raised here, not by node-addon-api's wrapper:
// a C++ exception that escaped a callback (as node-addon-api's rethrow does when
// the environment is terminating) would std::terminate() the whole process.
template <typename Fn>
Napi::Value GuardCall(const Napi::CallbackInfo& info, Fn&& fn) noexcept {
  napi_env env = info.Env();
  try {
    try {
      return fn();
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
    } catch (...) {
      throw Napi::Error::New(info.Env(), "unknown native exception");
    }
  } catch (const Napi::Error& e) {
    return RaiseInJs(env, &e);
  } catch (...) {
    // Even making the JS error failed (the environment is going away, or no memory).
    return RaiseInJs(env, nullptr);
  }
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  return GuardCall(info, [&]() -> Napi::Value { return F(info); });
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
// Integers and int lists with limits. Every native entry checks its own arguments
// (the TS layer's checks are for messages, not for safety): a wrong type is a
// TypeError, a value or length out of range a RangeError naming the argument and the value.
int64_t ArgIntIn(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max);
int64_t ArgIntIn(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t dflt, int64_t min, int64_t max);
// A list (or one integer, a list of one) of minLen..maxLen integers, each in [min, max].
std::vector<int64_t> ArgIntList(const Napi::CallbackInfo& info, size_t i, const char* name, size_t minLen, size_t maxLen,
                                int64_t min, int64_t max);
// Exactly n integers: one integer or a list of one is repeated n times (as libtorch
// expands convolution and pooling parameters), else the list must have n; each in [min, max].
std::vector<int64_t> ArgIntTuple(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n, int64_t min, int64_t max);
// Most dimensions a shape, a permutation or a list of dims may have here.
constexpr int64_t kMaxDims = 64;
// A shape for a new tensor: at most kMaxDims sizes, each >= 0.
std::vector<int64_t> ArgShape(const Napi::CallbackInfo& info, size_t i, const char* name);
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
void RegisterDispatch(Napi::Env env, Napi::Object exports);

}  // namespace tn
