// A caching allocator for CPU tensors, installed as libtorch's CPU allocator
// (c10::SetCPUAllocator) when the addon loads.
//
// libtorch's default CPU allocator is malloc. A training step frees its activations
// and allocates the same sizes again the next batch; in the main thread glibc keeps
// that memory, but a worker thread (where train() runs) gets its own glibc arena,
// made of 64 MB heaps that glibc unmaps as soon as one is entirely free. Then every
// batch faults its activations back in: measured 10 to 105 page faults per sample,
// and a quarter of the training speed, varying from run to run with where blocks
// happened to land. The C++ reference, in its main thread, has none.
//
// So blocks of at least kMinBytes are kept when their tensor dies, by size, and
// handed to the next allocation they fit (at most twice its size), as PyTorch's
// CUDA caching allocator does for GPU memory. The cache holds at most TORCHNODE_CPU_CACHE_MB
// (default 1024) of free blocks; beyond that, freed blocks go back to malloc.
// releaseMemory() (and so the end of every train() job) empties it.
// TORCHNODE_CPU_CACHE_MB=0 leaves libtorch's allocator in place.
#include "common.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace tn {
namespace {

constexpr size_t kMinBytes = size_t(1) << 18;   // 256 KiB: below, malloc's own bins do well
constexpr size_t kRounding = size_t(1) << 16;   // sizes rounded up to 64 KiB

// Every block's data pointer is also its DataPtr context, so the allocator serves
// raw_allocate / raw_deallocate too (libtorch's oneDNN glue allocates that way).
class CachingCPUAllocator final : public c10::Allocator {
 public:
  CachingCPUAllocator(size_t limit) : limit_(limit) {}

  // libtorch 1.13 declares allocate() const, 2.x non-const: one of these two
  // overrides it, the other is a plain overload. Likewise copy_data, pure virtual
  // only in 2.x.
  at::DataPtr allocate(size_t n) const { return Allocate(n); }
  at::DataPtr allocate(size_t n) { return Allocate(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const {
    if (count) std::memcpy(dest, src, count);
  }
  at::DeleterFnPtr raw_deleter() const override { return &Release; }

  // Frees every cached block; returns the bytes released.
  size_t Empty() {
    std::vector<std::pair<void*, size_t>> drop;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& entry : free_) {
        for (void* p : entry.second) drop.emplace_back(p, entry.first);
      }
      free_.clear();
      cached_ = 0;
    }
    size_t bytes = 0;
    for (auto& d : drop) {
      bytes += d.second;
      c10::free_cpu(d.first);
    }
    return bytes;
  }

  struct Stats {
    size_t cached, blocks, live, limit;
    uint64_t hits, misses;
  };
  Stats GetStats() {
    std::lock_guard<std::mutex> lock(mutex_);
    size_t blocks = 0;
    for (auto& entry : free_) blocks += entry.second.size();
    return {cached_, blocks, live_bytes_, limit_, hits_, misses_};
  }

  static CachingCPUAllocator* self_;

 private:
  at::DataPtr Allocate(size_t n) const { return const_cast<CachingCPUAllocator*>(this)->AllocateImpl(n); }

  at::DataPtr AllocateImpl(size_t n) {
    if (n < kMinBytes) {
      void* ptr = c10::alloc_cpu(n);
      return {ptr, ptr, &c10::free_cpu, at::Device(at::DeviceType::CPU)};
    }
    size_t size = (n + kRounding - 1) / kRounding * kRounding;
    void* ptr = nullptr;
    {
      // The smallest free block that fits, if it is at most twice the size: a chain
      // of layers whose outputs shrink (100 MB, 25 MB, 50 MB, ... in a 1000-image
      // evaluation batch) then runs in the blocks of the previous ones, and the cache
      // holds no more than the chain's peak, as malloc would.
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= 2 * size) {
        size = it->first;
        ptr = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) free_.erase(it);
        cached_ -= size;
        hits_++;
        live_[ptr] = size;
        live_bytes_ += size;
      } else {
        misses_++;
      }
    }
    if (!ptr) {
      try {
        ptr = c10::alloc_cpu(size);
      } catch (...) {
        // Out of memory: give the cache back to the system and try once more.
        Empty();
        ptr = c10::alloc_cpu(size);
      }
      std::lock_guard<std::mutex> lock(mutex_);
      live_[ptr] = size;
      live_bytes_ += size;
    }
    return {ptr, ptr, &Release, at::Device(at::DeviceType::CPU)};
  }

  // The deleter of cached-size blocks, and raw_deleter() for any block: a pointer
  // this allocator does not track (a small block) goes straight back to malloc.
  static void Release(void* ptr) {
    if (!ptr) return;
    CachingCPUAllocator* a = self_;
    {
      std::lock_guard<std::mutex> lock(a->mutex_);
      auto it = a->live_.find(ptr);
      if (it != a->live_.end()) {
        const size_t size = it->second;
        a->live_.erase(it);
        a->live_bytes_ -= size;
        if (a->cached_ + size <= a->limit_) {
          a->free_[size].push_back(ptr);
          a->cached_ += size;
          return;
        }
      }
    }
    c10::free_cpu(ptr);
  }

  const size_t limit_;
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;            // block size -> free blocks
  std::unordered_map<void*, size_t> live_;               // blocks in use -> rounded size
  size_t cached_ = 0;
  size_t live_bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

CachingCPUAllocator* CachingCPUAllocator::self_ = nullptr;

std::string g_reason;

// Installed once per process (the addon may be loaded by several Node environments,
// main thread and workers; they share it). Never deleted: tensors may die after the
// addon's environments have gone.
CachingCPUAllocator* InstallCache() {
  static CachingCPUAllocator* installed = []() -> CachingCPUAllocator* {
    size_t mb = 1024;
    if (const char* v = std::getenv("TORCHNODE_CPU_CACHE_MB")) {
      char* end = nullptr;
      const unsigned long long parsed = std::strtoull(v, &end, 10);
      if (end == v || *end != '\0') {
        g_reason = std::string("off: TORCHNODE_CPU_CACHE_MB must be a whole number of MiB, got '") + v + "'";
        return nullptr;
      }
      // At most what a size_t can hold in bytes.
      mb = parsed > (SIZE_MAX >> 20) ? (SIZE_MAX >> 20) : size_t(parsed);
    }
    if (mb == 0) {
      g_reason = "off: TORCHNODE_CPU_CACHE_MB=0";
      return nullptr;
    }
    auto* cache = new CachingCPUAllocator(mb << 20);
    CachingCPUAllocator::self_ = cache;
    // Priority 1: above libtorch's default registration (0).
    c10::SetCPUAllocator(cache, 1);
    if (c10::GetCPUAllocator() != cache) {
      g_reason = "off: another CPU allocator with a higher priority is installed";
      return nullptr;  // the object stays allocated, unused
    }
    g_reason = "on: freed CPU blocks of 256 KiB and more are kept for reuse, up to " + std::to_string(mb) + " MiB";
    return cache;
  }();
  return installed;
}

}  // namespace

size_t EmptyCpuCache() {
  CachingCPUAllocator* cache = InstallCache();
  return cache ? cache->Empty() : 0;
}

// cpuCacheInfo(): { enabled, reason, cachedBytes, cachedBlocks, liveBytes, limitBytes, hits, misses }
static Napi::Value CpuCacheInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CachingCPUAllocator* cache = InstallCache();
  auto o = Napi::Object::New(env);
  o.Set("enabled", Napi::Boolean::New(env, cache != nullptr));
  o.Set("reason", Napi::String::New(env, g_reason));
  const auto s = cache ? cache->GetStats() : CachingCPUAllocator::Stats{0, 0, 0, 0, 0, 0};
  o.Set("cachedBytes", Napi::Number::New(env, double(s.cached)));
  o.Set("cachedBlocks", Napi::Number::New(env, double(s.blocks)));
  o.Set("liveBytes", Napi::Number::New(env, double(s.live)));
  o.Set("limitBytes", Napi::Number::New(env, double(s.limit)));
  o.Set("hits", Napi::Number::New(env, double(s.hits)));
  o.Set("misses", Napi::Number::New(env, double(s.misses)));
  return o;
}

// emptyCpuCache(): frees the cached blocks; returns the bytes released.
static Napi::Value EmptyCpuCacheJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(EmptyCpuCache()));
}

void RegisterAllocator(Napi::Env env, Napi::Object exports) {
  InstallCache();
  Export<CpuCacheInfo>(env, exports, "cpuCacheInfo");
  Export<EmptyCpuCacheJs>(env, exports, "emptyCpuCache");
}

}  // namespace tn
