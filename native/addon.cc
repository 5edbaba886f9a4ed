// Entry point: registers every family of functions and does nothing else.
#include "common.h"

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// glibc returns large freed blocks to the kernel (munmap, heap trimming) at once,
// and the worker threads' arenas trim most eagerly: a training step then faults
// its ~10 MB of activations back in every batch (76 page faults per sample in a
// worker thread, 10% of the CPU time in the kernel). Keeping freed memory in the
// heap fixes that (10 faults per sample), as the C++ and Python programs get
// without asking. TORCHNODE_MALLOC_TUNING=0 leaves glibc's settings alone.
static void TuneMalloc() {
#if defined(__GLIBC__)
  const char* v = std::getenv("TORCHNODE_MALLOC_TUNING");
  if (v && std::string(v) == "0") return;
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return;  // the user chose
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

static Napi::Object InitTorchnode(Napi::Env env, Napi::Object exports) {
  static bool tuned = (TuneMalloc(), true);
  (void)tuned;
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
