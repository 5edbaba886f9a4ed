// The few ops the library's own code calls natively (the rest go through the generic
// path, native/dispatch.cc): sigmoid and tanh for nn.functional, detach for Module,
// contiguous for the layout helpers.
#include "common.h"

namespace tn {

#define TN_UNARY(NAME, EXPR)                                  \
  static Napi::Value NAME(const Napi::CallbackInfo& info) {   \
    at::Tensor& a = ArgTensor(info, 0, "input");              \
    return Wrap(info.Env(), EXPR);                            \
  }

TN_UNARY(Sigmoid, a.sigmoid())
TN_UNARY(Tanh, a.tanh())
TN_UNARY(Detach, a.detach())

// contiguous(a, memoryFormat?)
static Napi::Value Contiguous(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  const auto format = ArgMemoryFormat(info, 1, "memoryFormat", at::MemoryFormat::Contiguous);
  if (format == at::MemoryFormat::Preserve) ThrowType(info.Env(), "contiguous: memoryFormat 'preserve_format' is not a layout");
  return Wrap(info.Env(), a.contiguous(format));
}

void RegisterMath(Napi::Env env, Napi::Object exports) {
  Export<Sigmoid>(env, exports, "sigmoid");
  Export<Tanh>(env, exports, "tanh");
  Export<Detach>(env, exports, "detach");
  Export<Contiguous>(env, exports, "contiguous");
}

}  // namespace tn
