// Devices, threads and build facts: CUDA queries, thread pools, libtorch version.
// CUDA-only calls compile only when CMake found torch_cuda (TORCHNODE_WITH_CUDA),
// so the same sources build against CPU-only libtorch.
#include "common.h"

#include <torch/cuda.h>
#include <torch/version.h>
#include <ATen/Parallel.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#ifdef TORCHNODE_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace tn {

static Napi::Value CudaIsAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), torch::cuda::is_available());
}
static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
}
static void RequireCuda(Napi::Env env, const char* what) {
  if (!torch::cuda::is_available()) {
    ThrowTorch(env, std::string(what) + ": CUDA is not available (this libtorch build has no CUDA support or no GPU was found)");
  }
}
static Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  RequireCuda(info.Env(), "cuda.synchronize");
  torch::cuda::synchronize(ArgIntIn(info, 0, "device", -1, -1, static_cast<int64_t>(torch::cuda::device_count()) - 1));
  return info.Env().Undefined();
}
static Napi::Value CudaManualSeedAll(const Napi::CallbackInfo& info) {
  // A no-op without CUDA, like torch.cuda.manual_seed_all.
  torch::cuda::manual_seed_all(ArgSeed(info, 0, "seed"));
  return info.Env().Undefined();
}
// cudaMemory(device) -> {allocated, reserved, maxAllocated} in bytes, or null without CUDA.
static Napi::Value CudaMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef TORCHNODE_WITH_CUDA
  if (!torch::cuda::is_available()) return env.Null();
  int64_t dev = ArgIntIn(info, 0, "device", static_cast<int64_t>(c10::cuda::current_device()), 0,
                         static_cast<int64_t>(torch::cuda::device_count()) - 1);
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(dev));
  auto o = Napi::Object::New(env);
  o.Set("allocated", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[0].current)));
  o.Set("reserved", Napi::Number::New(env, static_cast<double>(stats.reserved_bytes[0].current)));
  o.Set("maxAllocated", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[0].peak)));
  return o;
#else
  return env.Null();
#endif
}
static Napi::Value CudaEmptyCache(const Napi::CallbackInfo& info) {
#ifdef TORCHNODE_WITH_CUDA
  if (torch::cuda::is_available()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  return info.Env().Undefined();
}

constexpr int64_t kMaxThreads = 1024;

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = ArgInt(info, 0, "threads");
  if (n < 1) ThrowType(info.Env(), "Expected a positive integer for threads but received " + std::to_string(n));
  // OpenMP starts that many threads at the next parallel op, and a failed thread
  // start ends the process (libgomp: "Thread creation failed").
  if (n > kMaxThreads) {
    ThrowRange(info.Env(), "Expected at most " + std::to_string(kMaxThreads) + " for threads but received " + std::to_string(n));
  }
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}
static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("version", Napi::String::New(env, TORCH_VERSION));
#ifdef TORCHNODE_WITH_CUDA
  o.Set("compiledWithCuda", Napi::Boolean::New(env, true));
#else
  o.Set("compiledWithCuda", Napi::Boolean::New(env, false));
#endif
  o.Set("mkldnn", Napi::Boolean::New(env, at::hasMKLDNN()));
  o.Set("mkl", Napi::Boolean::New(env, at::hasMKL()));
  o.Set("openmp", Napi::Boolean::New(env, at::hasOpenMP()));
  o.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
  o.Set("cxx11Abi", Napi::Boolean::New(env, _GLIBCXX_USE_CXX11_ABI == 1));
  return o;
}

// releaseMemory(): frees the CPU tensor cache's blocks (allocator.cc) and hands the
// free memory glibc keeps in every arena back to the kernel (malloc_trim). Called
// when a training job ends, so the memory its worker thread used does not stay
// resident. Returns whether anything was released.
static Napi::Value ReleaseMemory(const Napi::CallbackInfo& info) {
  const bool cache = EmptyCpuCache() > 0;
#if defined(__GLIBC__)
  return Napi::Boolean::New(info.Env(), (malloc_trim(0) != 0) || cache);
#else
  return Napi::Boolean::New(info.Env(), cache);
#endif
}

void RegisterDevice(Napi::Env env, Napi::Object exports) {
  Export<ReleaseMemory>(env, exports, "releaseMemory");
  Export<CudaIsAvailable>(env, exports, "cudaIsAvailable");
  Export<CudaDeviceCount>(env, exports, "cudaDeviceCount");
  Export<CudaSynchronize>(env, exports, "cudaSynchronize");
  Export<CudaManualSeedAll>(env, exports, "cudaManualSeedAll");
  Export<CudaMemory>(env, exports, "cudaMemory");
  Export<CudaEmptyCache>(env, exports, "cudaEmptyCache");
  Export<SetNumThreads>(env, exports, "setNumThreads");
  Export<GetNumThreads>(env, exports, "getNumThreads");
  Export<BuildInfo>(env, exports, "buildInfo");
}

}  // namespace tn
