// Autograd: requires_grad, backward, .grad, grad mode and autograd.grad.
#include "common.h"

#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <memory>
#include <sstream>
#include <vector>

namespace tn {

static Napi::Value RequiresGrad_(const Napi::CallbackInfo& info) {
  ArgTensor(info, 0, "self").requires_grad_(ArgBool(info, 1, "requiresGrad", true));
  return info[0];
}
static Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), ArgTensor(info, 0, "self").requires_grad());
}
static Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), ArgTensor(info, 0, "self").is_leaf());
}
// backward(self, gradient?, retainGraph?, createGraph?)
static Napi::Value Backward(const Napi::CallbackInfo& info) {
  at::Tensor& t = ArgTensor(info, 0, "self");
  auto g = ArgOptTensor(info, 1, "gradient");
  c10::optional<bool> retain;
  if (!IsNullish(info, 2)) retain = ArgBool(info, 2, "retainGraph", false);
  t.backward(g.value_or(at::Tensor()), retain, ArgBool(info, 3, "createGraph", false));
  return info.Env().Undefined();
}
static Napi::Value Grad(const Napi::CallbackInfo& info) {
  const at::Tensor& g = ArgTensor(info, 0, "self").grad();
  if (!g.defined()) return info.Env().Null();
  return Wrap(info.Env(), g);
}
// setGrad(self, grad|null)
static Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  at::Tensor& t = ArgTensor(info, 0, "self");
  auto g = ArgOptTensor(info, 1, "grad");
  // PyTorch's `x.grad = g` checks (mutable_grad() checks nothing): backward and the
  // optimizers would otherwise accumulate into a gradient of another shape or type.
  if (g) {
    if (g->is_same(t)) ThrowRange(info.Env(), "setGrad: a tensor cannot be its own gradient");
    if (g->scalar_type() != t.scalar_type() || g->device() != t.device() || g->sizes() != t.sizes() || g->layout() != t.layout()) {
      std::ostringstream os;
      os << "setGrad: expected a gradient of " << DtypeName(t.scalar_type()) << " " << t.sizes() << " on " << t.device()
         << " but received " << DtypeName(g->scalar_type()) << " " << g->sizes() << " on " << g->device();
      ThrowRange(info.Env(), os.str());
    }
  }
  t.mutable_grad() = g.value_or(at::Tensor());
  return info.Env().Undefined();
}
static Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}
static Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(ArgBool(info, 0, "enabled", true));
  return Napi::Boolean::New(info.Env(), prev);
}
// grad(outputs, inputs, gradOutputs?, retainGraph?, createGraph?, allowUnused?)
static Napi::Value AutogradGrad(const Napi::CallbackInfo& info) {
  auto outputs = ArgTensorList(info, 0, "outputs");
  auto inputs = ArgTensorList(info, 1, "inputs");
  std::vector<at::Tensor> gradOutputs;
  if (!IsNullish(info, 2)) gradOutputs = ArgTensorList(info, 2, "gradOutputs");
  c10::optional<bool> retain;
  if (!IsNullish(info, 3)) retain = ArgBool(info, 3, "retainGraph", false);
  auto res = torch::autograd::grad(outputs, inputs, gradOutputs, retain, ArgBool(info, 4, "createGraph", false),
                                   ArgBool(info, 5, "allowUnused", false));
  Napi::Env env = info.Env();
  auto arr = Napi::Array::New(env, res.size());
  for (size_t k = 0; k < res.size(); k++) {
    arr.Set(static_cast<uint32_t>(k), res[k].defined() ? Wrap(env, res[k]) : env.Null());
  }
  return arr;
}

// Inference mode (c10::InferenceMode) is an RAII guard; JS enters and leaves it
// around a synchronous function, so the guards live on a per-thread stack.
static thread_local std::vector<std::unique_ptr<c10::InferenceMode>> gInferenceGuards;

static Napi::Value EnterInferenceMode(const Napi::CallbackInfo& info) {
  gInferenceGuards.push_back(std::make_unique<c10::InferenceMode>(true));
  return Napi::Number::New(info.Env(), static_cast<double>(gInferenceGuards.size()));
}
static Napi::Value ExitInferenceMode(const Napi::CallbackInfo& info) {
  if (!gInferenceGuards.empty()) gInferenceGuards.pop_back();
  return Napi::Number::New(info.Env(), static_cast<double>(gInferenceGuards.size()));
}
static Napi::Value IsInferenceMode(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::InferenceMode::is_enabled());
}

void RegisterAutograd(Napi::Env env, Napi::Object exports) {
  Export<EnterInferenceMode>(env, exports, "enterInferenceMode");
  Export<ExitInferenceMode>(env, exports, "exitInferenceMode");
  Export<IsInferenceMode>(env, exports, "isInferenceMode");
  Export<RequiresGrad_>(env, exports, "requiresGrad_");
  Export<RequiresGrad>(env, exports, "requiresGrad");
  Export<IsLeaf>(env, exports, "isLeaf");
  Export<Backward>(env, exports, "backward");
  Export<Grad>(env, exports, "grad");
  Export<SetGrad>(env, exports, "setGrad");
  Export<IsGradEnabled>(env, exports, "isGradEnabled");
  Export<SetGradEnabled>(env, exports, "setGradEnabled");
  Export<AutogradGrad>(env, exports, "autogradGrad");
}

}  // namespace tn
