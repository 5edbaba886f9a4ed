// nn functional ops: convolution, pooling, activations, dropout, losses.
// (linear is in linear.cc.) Argument order follows torch.nn.functional; the TS layer fills PyTorch's defaults.
#include "common.h"

#include <ATen/Config.h>

#include <sstream>

namespace tn {

// Convolution and pooling parameters: one integer or a pair, as libtorch expands
// them; at most 2^31 - 1 so the output-size arithmetic cannot overflow.
constexpr int64_t kMaxParam = std::numeric_limits<int32_t>::max();
static std::vector<int64_t> ArgPair(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min) {
  return ArgIntTuple(info, i, name, 2, min, kMaxParam);
}

// conv2d(input, weight, bias?, stride, padding, dilation, groups)
static Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::conv2d(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "weight"), ArgOptTensor(info, 2, "bias"),
                                     ArgPair(info, 3, "stride", 1), ArgPair(info, 4, "padding", 0),
                                     ArgPair(info, 5, "dilation", 1), ArgIntIn(info, 6, "groups", 1, 1, kMaxParam)));
}
// conv2dMkldnn(input, weight, bias?, stride, padding, dilation, groups): oneDNN's
// convolution directly. at::conv2d picks a slow im2col path for one small image
// (libtorch only takes oneDNN from batch 2 up), which dominates one-image latency.
// Used by predict(); same results as at::conv2d on batches of 2 or more.
// at::mkldnn_convolution checks almost nothing (it indexes the parameter lists by
// the input's rank and divides by the stride), so everything is checked here.
static Napi::Value Conv2dMkldnn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& x = ArgTensor(info, 0, "input");
  const at::Tensor& w = ArgTensor(info, 1, "weight");
  auto b = ArgOptTensor(info, 2, "bias");
  const auto stride = ArgPair(info, 3, "stride", 1);
  const auto padding = ArgPair(info, 4, "padding", 0);
  const auto dilation = ArgPair(info, 5, "dilation", 1);
  const int64_t groups = ArgIntIn(info, 6, "groups", 1, 1, kMaxParam);
  auto shape = [](const at::Tensor& t) {
    std::ostringstream os;
    os << t.sizes();
    return os.str();
  };
  if (x.dim() != 4) ThrowRange(env, "conv2dMkldnn: expected a 4-D input [N, C, H, W] but received shape " + shape(x));
  if (w.dim() != 4) ThrowRange(env, "conv2dMkldnn: expected a 4-D weight [C_out, C_in/groups, kH, kW] but received shape " + shape(w));
  for (const at::Tensor* t : {&x, &w}) {
    if (!t->device().is_cpu() || t->layout() != at::kStrided || t->scalar_type() != at::kFloat) {
      ThrowType(env, std::string("conv2dMkldnn: expected dense float32 CPU tensors but received ") + DtypeName(t->scalar_type()) +
                         " on " + DeviceName(t->device()));
    }
  }
  if (x.numel() == 0 || w.numel() == 0) ThrowRange(env, "conv2dMkldnn: expected a non-empty input and weight but received shapes " + shape(x) + " and " + shape(w));
  if (w.size(0) % groups != 0 || x.size(1) != w.size(1) * groups) {
    ThrowRange(env, "conv2dMkldnn: input " + shape(x) + " and weight " + shape(w) + " do not match with groups=" + std::to_string(groups));
  }
  if (b) {
    if (b->dim() != 1 || b->size(0) != w.size(0) || !b->device().is_cpu() || b->layout() != at::kStrided || b->scalar_type() != at::kFloat) {
      ThrowRange(env, "conv2dMkldnn: expected a float32 CPU bias of shape [" + std::to_string(w.size(0)) + "] but received " +
                          DtypeName(b->scalar_type()) + " of shape " + shape(*b));
    }
  }
  for (int d = 0; d < 2; d++) {
    const int64_t in = x.size(d + 2) + 2 * padding[d];
    const int64_t span = dilation[d] * (w.size(d + 2) - 1) + 1;
    if (in < span) {
      ThrowRange(env, "conv2dMkldnn: the kernel (" + std::to_string(span) + " with dilation) is larger than the padded input (" +
                          std::to_string(in) + ") in spatial dim " + std::to_string(d));
    }
  }
#if AT_MKLDNN_ENABLED()
  // Views (transposed, expanded) are made dense; either dense layout is taken as it is.
  auto dense = [](const at::Tensor& t) {
    return t.is_contiguous() || t.is_contiguous(at::MemoryFormat::ChannelsLast) ? t : t.contiguous();
  };
  return Wrap(env, at::mkldnn_convolution(dense(x), dense(w), b ? c10::optional<at::Tensor>(b->contiguous()) : c10::nullopt,
                                          padding, stride, dilation, groups));
#else
  ThrowTorch(env, "conv2dMkldnn: this libtorch was built without oneDNN (MKL-DNN)");
#endif
}
// maxPool2d(input, kernelSize, stride, padding, dilation, ceilMode); an empty stride is the kernel size.
static std::vector<int64_t> PoolStride(const Napi::CallbackInfo& info, size_t i, const std::vector<int64_t>& kernel) {
  if (info[i].IsArray() && info[i].As<Napi::Array>().Length() == 0) return kernel;
  return ArgPair(info, i, "stride", 1);
}
static Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  const auto kernel = ArgPair(info, 1, "kernelSize", 1);
  return Wrap(info.Env(), at::max_pool2d(ArgTensor(info, 0, "input"), kernel, PoolStride(info, 2, kernel),
                                         ArgPair(info, 3, "padding", 0), ArgPair(info, 4, "dilation", 1),
                                         ArgBool(info, 5, "ceilMode", false)));
}
// avgPool2d(input, kernelSize, stride, padding, ceilMode, countIncludePad, divisorOverride?)
static Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  const auto kernel = ArgPair(info, 1, "kernelSize", 1);
  c10::optional<int64_t> divisor;
  if (!IsNullish(info, 6)) divisor = ArgIntIn(info, 6, "divisorOverride", 1, kMaxParam);
  return Wrap(info.Env(), at::avg_pool2d(ArgTensor(info, 0, "input"), kernel, PoolStride(info, 2, kernel),
                                         ArgPair(info, 3, "padding", 0), ArgBool(info, 4, "ceilMode", false),
                                         ArgBool(info, 5, "countIncludePad", true), divisor));
}
static Napi::Value AdaptiveAvgPool2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::adaptive_avg_pool2d(ArgTensor(info, 0, "input"), ArgPair(info, 1, "outputSize", 0)));
}
static Napi::Value Relu(const Napi::CallbackInfo& info) { return Wrap(info.Env(), at::relu(ArgTensor(info, 0, "input"))); }
static Napi::Value LeakyRelu(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::leaky_relu(ArgTensor(info, 0, "input"), ArgDouble(info, 1, "negativeSlope", 0.01)));
}
static Napi::Value Softmax(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::softmax(ArgTensor(info, 0, "input"), ArgInt(info, 1, "dim"), ArgOptDtype(info, 2, "dtype")));
}
static Napi::Value LogSoftmax(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::log_softmax(ArgTensor(info, 0, "input"), ArgInt(info, 1, "dim"), ArgOptDtype(info, 2, "dtype")));
}
// dropout(input, p, training): draws from the global generator, like F.dropout.
static Napi::Value Dropout(const Napi::CallbackInfo& info) {
  const double p = ArgDouble(info, 1, "p", 0.5);
  if (!(p >= 0 && p <= 1)) ThrowRange(info.Env(), "Expected a probability in [0, 1] for p but received " + Describe(info[1]));
  return Wrap(info.Env(), at::dropout(ArgTensor(info, 0, "input"), p, ArgBool(info, 2, "training", true)));
}
// crossEntropy(input, target, weight?, reduction, ignoreIndex, labelSmoothing)
static Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::cross_entropy_loss(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "target"),
                                                 ArgOptTensor(info, 2, "weight"), ArgReduction(info, 3, "reduction"),
                                                 ArgInt(info, 4, "ignoreIndex", -100), ArgDouble(info, 5, "labelSmoothing", 0.0)));
}
// nllLoss(input, target, weight?, reduction, ignoreIndex)
static Napi::Value NllLoss(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::nll_loss_nd(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "target"),
                                          ArgOptTensor(info, 2, "weight"), ArgReduction(info, 3, "reduction"),
                                          ArgInt(info, 4, "ignoreIndex", -100)));
}
static Napi::Value MseLoss(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::mse_loss(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "target"), ArgReduction(info, 2, "reduction")));
}

void RegisterNN(Napi::Env env, Napi::Object exports) {
  Export<Conv2d>(env, exports, "conv2d");
  Export<Conv2dMkldnn>(env, exports, "conv2dMkldnn");
  Export<MaxPool2d>(env, exports, "maxPool2d");
  Export<AvgPool2d>(env, exports, "avgPool2d");
  Export<AdaptiveAvgPool2d>(env, exports, "adaptiveAvgPool2d");
  Export<Relu>(env, exports, "relu");
  Export<LeakyRelu>(env, exports, "leakyRelu");
  Export<Softmax>(env, exports, "softmax");
  Export<LogSoftmax>(env, exports, "logSoftmax");
  Export<Dropout>(env, exports, "dropout");
  Export<CrossEntropy>(env, exports, "crossEntropy");
  Export<NllLoss>(env, exports, "nllLoss");
  Export<MseLoss>(env, exports, "mseLoss");
}

}  // namespace tn
