// Entry point: registers every family of functions and does nothing else.
#include "common.h"

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// glibc returns large freed blocks to the kernel (munmap, heap trimming) at once,
// and worker threads' arenas trim eagerly: a training step then faults its ~10 MB
// of activations back in every batch (measured 24-105 page faults per sample in a
// training worker, up to 20% of the CPU time in the kernel; the C++ reference has
// about 0). Serving blocks up to 32 MB from the heap and trimming only beyond 128 MB
// free brings that to about 8. Larger settings cut faults no further but keep far
// more memory (peak RSS +400 MB in the benchmark). TORCHNODE_MALLOC_TUNING=0, or
// glibc's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_, leave it alone.
static void TuneMalloc() {
#if defined(__GLIBC__)
  const char* v = std::getenv("TORCHNODE_MALLOC_TUNING");
  if (v && std::string(v) == "0") return;
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return;  // the user chose
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

static Napi::Object InitTorchnode(Napi::Env env, Napi::Object exports) {
  static bool tuned = (TuneMalloc(), true);
  (void)tuned;
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
  return exports;
}

NODE_API_MODULE(torchnode, InitTorchnode)
