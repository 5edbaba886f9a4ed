// Entry point: registers every family of functions and does nothing else.
#include "common.h"

static Napi::Object InitTorchnode(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new tn::AddonData());
  tn::RegisterTensor(env, exports);
  tn::RegisterFactories(env, exports);
  tn::RegisterMath(env, exports);
  tn::RegisterShape(env, exports);
  tn::RegisterNN(env, exports);
  tn::RegisterAutograd(env, exports);
  tn::RegisterDevice(env, exports);
  tn::RegisterDistributed(env, exports);
  return exports;
}

NODE_API_MODULE(torchnode, InitTorchnode)
