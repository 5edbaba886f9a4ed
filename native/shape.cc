// Shape and indexing ops: views share storage with their input, as in PyTorch.
#include "common.h"

namespace tn {

// view, reshape and expand sizes: at most kMaxDims, each >= 0 or -1 (inferred / kept).
static std::vector<int64_t> ArgSizes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgIntList(info, i, name, 0, kMaxDims, -1, std::numeric_limits<int64_t>::max());
}

static Napi::Value View(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").view(ArgSizes(info, 1, "shape")));
}
static Napi::Value Reshape(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").reshape(ArgSizes(info, 1, "shape")));
}
static Napi::Value Flatten(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").flatten(ArgInt(info, 1, "startDim", 0), ArgInt(info, 2, "endDim", -1)));
}
static Napi::Value Squeeze(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  if (IsNullish(info, 1)) return Wrap(info.Env(), a.squeeze());
  return Wrap(info.Env(), a.squeeze(ArgInt(info, 1, "dim")));
}
static Napi::Value Unsqueeze(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").unsqueeze(ArgInt(info, 1, "dim")));
}
static Napi::Value Permute(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").permute(ArgIntList(info, 1, "dims", 0, kMaxDims, -kMaxDims, kMaxDims - 1)));
}
static Napi::Value Transpose(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").transpose(ArgInt(info, 1, "dim0"), ArgInt(info, 2, "dim1")));
}
static Napi::Value Expand(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").expand(ArgSizes(info, 1, "size")));
}
static Napi::Value Repeat(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").repeat(ArgShape(info, 1, "repeats")));
}
static Napi::Value Cat(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::cat(ArgTensorList(info, 0, "tensors"), ArgInt(info, 1, "dim", 0)));
}
static Napi::Value Stack(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::stack(ArgTensorList(info, 0, "tensors"), ArgInt(info, 1, "dim", 0)));
}
static Napi::Value Narrow(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").narrow(ArgInt(info, 1, "dim"), ArgInt(info, 2, "start"), ArgInt(info, 3, "length")));
}
// slice(input, dim, start?, end?, step?)
static Napi::Value Slice(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").slice(ArgInt(info, 1, "dim"), ArgOptInt(info, 2, "start"),
                                                           ArgOptInt(info, 3, "end"), ArgInt(info, 4, "step", 1)));
}
static Napi::Value Select(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").select(ArgInt(info, 1, "dim"), ArgInt(info, 2, "index")));
}
static Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").index_select(ArgInt(info, 1, "dim"), ArgTensor(info, 2, "index")));
}
static Napi::Value Gather(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").gather(ArgInt(info, 1, "dim"), ArgTensor(info, 2, "index")));
}
static Napi::Value MaskedFill(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").masked_fill(ArgTensor(info, 1, "mask"), ArgScalar(info, 2, "value")));
}
static Napi::Value Split(const Napi::CallbackInfo& info) {
  return WrapList(info.Env(), ArgTensor(info, 0, "input").split(ArgInt(info, 1, "splitSize"), ArgInt(info, 2, "dim", 0)));
}
static Napi::Value Chunk(const Napi::CallbackInfo& info) {
  return WrapList(info.Env(), ArgTensor(info, 0, "input").chunk(ArgInt(info, 1, "chunks"), ArgInt(info, 2, "dim", 0)));
}

// to(input, dtype?, device?, nonBlocking?, copy?)
static Napi::Value To(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  auto dt = ArgOptDtype(info, 1, "dtype");
  at::Device dev = IsNullish(info, 2) ? a.device() : ArgDevice(info, 2, "device");
  if (dev.is_cuda() && !at::hasCUDA()) {
    ThrowTorch(info.Env(), "Cannot move a tensor to '" + dev.str() +
                               "': this libtorch build has no CUDA support or no GPU is available "
                               "(check torch.cuda.isAvailable())");
  }
  const auto format = ArgMemoryFormat(info, 5, "memoryFormat", at::MemoryFormat::Preserve);
  return Wrap(info.Env(), a.to(dev, dt.value_or(a.scalar_type()), ArgBool(info, 3, "nonBlocking", false), ArgBool(info, 4, "copy", false), format));
}

void RegisterShape(Napi::Env env, Napi::Object exports) {
  Export<View>(env, exports, "view");
  Export<Reshape>(env, exports, "reshape");
  Export<Flatten>(env, exports, "flatten");
  Export<Squeeze>(env, exports, "squeeze");
  Export<Unsqueeze>(env, exports, "unsqueeze");
  Export<Permute>(env, exports, "permute");
  Export<Transpose>(env, exports, "transpose");
  Export<Expand>(env, exports, "expand");
  Export<Repeat>(env, exports, "repeat");
  Export<Cat>(env, exports, "cat");
  Export<Stack>(env, exports, "stack");
  Export<Narrow>(env, exports, "narrow");
  Export<Slice>(env, exports, "slice");
  Export<Select>(env, exports, "select");
  Export<IndexSelect>(env, exports, "indexSelect");
  Export<Gather>(env, exports, "gather");
  Export<MaskedFill>(env, exports, "maskedFill");
  Export<Split>(env, exports, "split");
  Export<Chunk>(env, exports, "chunk");
  Export<To>(env, exports, "to");
}

}  // namespace tn
