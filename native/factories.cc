// Tensor factories and the random-number generators. Draws go through ATen's
// CPU generator (mt19937 + Philox on CUDA), the same one Python PyTorch uses,
// so manualSeed(s) reproduces torch.manual_seed(s) draw for draw.
#include "common.h"

#include <ATen/CPUGeneratorImpl.h>

namespace tn {

static const napi_type_tag kGeneratorTag = {0x1a2b3c4d5e6f7081ULL, 0x92a3b4c5d6e7f809ULL};

// ---- Generator ------------------------------------------------------------

// The methods are plain guarded functions on the prototype, not ObjectWrap instance
// methods: ObjectWrap unwraps `this` without looking at what it wraps, so
// NativeGenerator.prototype.seed.call(tensorHandle) would treat a tensor as a generator.
// These check the type tag first.
static GeneratorWrap& ThisGenerator(const Napi::CallbackInfo& info) {
  Napi::Value self = info.This();
  if (!GeneratorWrap::Is(self)) ThrowType(info.Env(), "Expected a Generator for this but received " + Describe(self));
  GeneratorWrap* g = GeneratorWrap::Unwrap(self.As<Napi::Object>());
  if (!g) ThrowType(info.Env(), "Expected a Generator for this but received an unfinished one");
  return *g;
}

template <Napi::Value (GeneratorWrap::*M)(const Napi::CallbackInfo&)>
static Napi::Value GeneratorMethod(const Napi::CallbackInfo& info) {
  return (ThisGenerator(info).*M)(info);
}

template <Napi::Value (GeneratorWrap::*M)(const Napi::CallbackInfo&)>
static Napi::PropertyDescriptor Method(Napi::Env env, const char* name) {
  return Napi::PropertyDescriptor::Value(name, Napi::Function::New<Guarded<GeneratorMethod<M>>>(env, name),
                                         static_cast<napi_property_attributes>(napi_writable | napi_configurable));
}

Napi::Function GeneratorWrap::Init(Napi::Env env) {
  Napi::Function ctor = DefineClass(env, "NativeGenerator", {});
  ctor.Get("prototype").As<Napi::Object>().DefineProperties({Method<&GeneratorWrap::ManualSeed>(env, "manualSeed"),
                                                             Method<&GeneratorWrap::InitialSeed>(env, "initialSeed"),
                                                             Method<&GeneratorWrap::Seed>(env, "seed"),
                                                             Method<&GeneratorWrap::GetState>(env, "getState"),
                                                             Method<&GeneratorWrap::SetState>(env, "setState")});
  return ctor;
}

bool GeneratorWrap::Is(const Napi::Value& v) {
  return v.IsObject() && v.As<Napi::Object>().CheckTypeTag(&kGeneratorTag);
}

GeneratorWrap::GeneratorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorWrap>(info) {
  info.This().As<Napi::Object>().TypeTag(&kGeneratorTag);
  // new NativeGenerator() -> a fresh CPU generator (default seed 67280421310721, like
  // torch.Generator()); new NativeGenerator(true) -> the global default generator.
  if (info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value()) {
    gen = at::detail::getDefaultCPUGenerator();
  } else {
    gen = at::detail::createCPUGenerator();
  }
}

template <typename F>
static auto WithLock(at::Generator& g, F f) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return f();
}

// (Run inside Guarded: libtorch's errors become TorchErrors there.)
Napi::Value GeneratorWrap::ManualSeed(const Napi::CallbackInfo& info) {
  uint64_t s = ArgSeed(info, 0, "seed");
  WithLock(gen, [&] { gen.set_current_seed(s); return 0; });
  return info.This();
}

Napi::Value GeneratorWrap::InitialSeed(const Napi::CallbackInfo& info) {
  return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(gen.current_seed()));
}

Napi::Value GeneratorWrap::Seed(const Napi::CallbackInfo& info) {
  uint64_t s = WithLock(gen, [&] { return gen.seed(); });
  return Napi::BigInt::New(info.Env(), s);
}

Napi::Value GeneratorWrap::GetState(const Napi::CallbackInfo& info) {
  at::Tensor st = WithLock(gen, [&] { return gen.get_state(); });
  return Wrap(info.Env(), st);
}

Napi::Value GeneratorWrap::SetState(const Napi::CallbackInfo& info) {
  at::Tensor& st = ArgTensor(info, 0, "state");
  WithLock(gen, [&] { gen.set_state(st); return 0; });
  return info.This();
}

// ---- factories ------------------------------------------------------------
// Conventions: (shape, dtype?, device?) with float32 as the default dtype.

static Napi::Value Zeros(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::zeros(ArgShape(info, 0, "size"), Options(info, 1, 2, c10::get_default_dtype_as_scalartype())));
}
static Napi::Value Ones(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::ones(ArgShape(info, 0, "size"), Options(info, 1, 2, c10::get_default_dtype_as_scalartype())));
}
static Napi::Value Empty(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::empty(ArgShape(info, 0, "size"), Options(info, 1, 2, c10::get_default_dtype_as_scalartype())));
}
static Napi::Value Full(const Napi::CallbackInfo& info) {
  at::Scalar v = ArgScalar(info, 1, "fillValue");
  // JS has no int literals: a number fills with the default dtype (float32), a BigInt with int64.
  at::ScalarType dflt = v.isBoolean() ? at::kBool : (info[1].IsBigInt() ? at::kLong : c10::get_default_dtype_as_scalartype());
  return Wrap(info.Env(), at::full(ArgShape(info, 0, "size"), v, Options(info, 2, 3, dflt)));
}
static Napi::Value Arange(const Napi::CallbackInfo& info) {
  at::Scalar start = ArgScalar(info, 0, "start");
  at::Scalar end = ArgScalar(info, 1, "end");
  at::Scalar step = ArgScalar(info, 2, "step");
  bool integral = start.isIntegral(false) && end.isIntegral(false) && step.isIntegral(false);
  return Wrap(info.Env(), at::arange(start, end, step, Options(info, 3, 4, integral ? at::kLong : c10::get_default_dtype_as_scalartype())));
}
static Napi::Value Rand(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::rand(ArgShape(info, 0, "size"), ArgOptGenerator(info, 3, "generator"), Options(info, 1, 2, c10::get_default_dtype_as_scalartype())));
}
static Napi::Value Randn(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::randn(ArgShape(info, 0, "size"), ArgOptGenerator(info, 3, "generator"), Options(info, 1, 2, c10::get_default_dtype_as_scalartype())));
}
// randint(low, high, size, dtype?, device?, generator?)
static Napi::Value Randint(const Napi::CallbackInfo& info) {
  int64_t low = ArgInt(info, 0, "low");
  int64_t high = ArgInt(info, 1, "high");
  return Wrap(info.Env(), at::randint(low, high, ArgShape(info, 2, "size"), ArgOptGenerator(info, 5, "generator"),
                                      Options(info, 3, 4, at::kLong)));
}
// randperm(n, dtype?, device?, generator?)
static Napi::Value Randperm(const Napi::CallbackInfo& info) {
  int64_t n = ArgIntIn(info, 0, "n", 0, std::numeric_limits<int64_t>::max());
  return Wrap(info.Env(), at::randperm(n, ArgOptGenerator(info, 3, "generator"), Options(info, 1, 2, at::kLong)));
}

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  uint64_t s = ArgSeed(info, 0, "seed");
  auto gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(s);
  }
  return info.Env().Undefined();
}

void RegisterFactories(Napi::Env env, Napi::Object exports) {
  Napi::Function gctor = GeneratorWrap::Init(env);
  Data(env).generatorCtor = Napi::Persistent(gctor);
  exports.Set("NativeGenerator", gctor);
  Export<Zeros>(env, exports, "zeros");
  Export<Ones>(env, exports, "ones");
  Export<Empty>(env, exports, "empty");
  Export<Full>(env, exports, "full");
  Export<Arange>(env, exports, "arange");
  Export<Rand>(env, exports, "rand");
  Export<Randn>(env, exports, "randn");
  Export<Randint>(env, exports, "randint");
  Export<Randperm>(env, exports, "randperm");
  Export<ManualSeed>(env, exports, "manualSeed");
}

}  // namespace tn
