// Entry point: registers every family of functions and does nothing else.
#include "common.h"

// (Allocation: libtorch's CPU tensors go through the caching allocator of
// allocator.cc, registered first below; the process's malloc is left as it is.)

static Napi::Object InitTorchnode(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new tn::AddonData());
  tn::RegisterAllocator(env, exports);
  tn::RegisterTensor(env, exports);
  tn::RegisterFactories(env, exports);
  tn::RegisterMath(env, exports);
  tn::RegisterShape(env, exports);
  tn::RegisterNN(env, exports);
  tn::RegisterLinear(env, exports);
  tn::RegisterAutograd(env, exports);
  tn::RegisterDevice(env, exports);
  tn::RegisterDistributed(env, exports);
  tn::RegisterDispatch(env, exports);
  return exports;
}

NODE_API_MODULE(torchnode, InitTorchnode)
