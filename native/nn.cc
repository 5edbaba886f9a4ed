// nn functional ops: convolution, pooling, activations, dropout, losses.
// (linear is in linear.cc.) Argument order follows torch.nn.functional; the TS layer fills PyTorch's defaults.
#include "common.h"

#include <ATen/Config.h>

namespace tn {

// conv2d(input, weight, bias?, stride, padding, dilation, groups)
static Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::conv2d(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "weight"), ArgOptTensor(info, 2, "bias"),
                                     ArgIntList(info, 3, "stride"), ArgIntList(info, 4, "padding"),
                                     ArgIntList(info, 5, "dilation"), ArgInt(info, 6, "groups", 1)));
}
// conv2dMkldnn(input, weight, bias?, stride, padding, dilation, groups): oneDNN's
// convolution directly. at::conv2d picks a slow im2col path for one small image
// (libtorch only takes oneDNN from batch 2 up), which dominates one-image latency.
// Used by predict(); same results as at::conv2d on batches of 2 or more.
static Napi::Value Conv2dMkldnn(const Napi::CallbackInfo& info) {
#if AT_MKLDNN_ENABLED()
  return Wrap(info.Env(), at::mkldnn_convolution(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "weight"), ArgOptTensor(info, 2, "bias"),
                                                 ArgIntList(info, 4, "padding"), ArgIntList(info, 3, "stride"),
                                                 ArgIntList(info, 5, "dilation"), ArgInt(info, 6, "groups", 1)));
#else
  ThrowTorch(info.Env(), "conv2dMkldnn: this libtorch was built without oneDNN (MKL-DNN)");
#endif
}
// maxPool2d(input, kernelSize, stride, padding, dilation, ceilMode)
static Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::max_pool2d(ArgTensor(info, 0, "input"), ArgIntList(info, 1, "kernelSize"),
                                         ArgIntList(info, 2, "stride"), ArgIntList(info, 3, "padding"),
                                         ArgIntList(info, 4, "dilation"), ArgBool(info, 5, "ceilMode", false)));
}
// avgPool2d(input, kernelSize, stride, padding, ceilMode, countIncludePad, divisorOverride?)
static Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::avg_pool2d(ArgTensor(info, 0, "input"), ArgIntList(info, 1, "kernelSize"),
                                         ArgIntList(info, 2, "stride"), ArgIntList(info, 3, "padding"),
                                         ArgBool(info, 4, "ceilMode", false), ArgBool(info, 5, "countIncludePad", true),
                                         ArgOptInt(info, 6, "divisorOverride")));
}
static Napi::Value AdaptiveAvgPool2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::adaptive_avg_pool2d(ArgTensor(info, 0, "input"), ArgIntList(info, 1, "outputSize")));
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
  return Wrap(info.Env(), at::dropout(ArgTensor(info, 0, "input"), ArgDouble(info, 1, "p", 0.5), ArgBool(info, 2, "training", true)));
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
