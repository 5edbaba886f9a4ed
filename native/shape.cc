// view (nn.functional), cat (the repr) and to (dtype, device and layout moves).
#include "common.h"

namespace tn {

// view, reshape and expand sizes: at most kMaxDims, each >= 0 or -1 (inferred / kept).
static std::vector<int64_t> ArgSizes(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgIntList(info, i, name, 0, kMaxDims, -1, std::numeric_limits<int64_t>::max());
}

static Napi::Value View(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").view(ArgSizes(info, 1, "shape")));
}
static Napi::Value Cat(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::cat(ArgTensorList(info, 0, "tensors"), ArgInt(info, 1, "dim", 0)));
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
  Export<Cat>(env, exports, "cat");
  Export<To>(env, exports, "to");
}

}  // namespace tn
