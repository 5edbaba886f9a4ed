// linear(input, weight, bias?, rowParallel?): at::linear, or the same products split
// across libtorch's intra-op threads where that cannot change a bit of the result.
//
// Debian's libtorch (BLAS_INFO=generic) does its matrix products with netlib's
// reference BLAS, which is single-threaded: with 2 threads, the seed CNN's
// Linear(3136, 100) held one core busy for half of every forward and backward pass
// while the other waited. The reference sgemm/dgemm computes each element of C from
// its own row of A and column of B, summing over k in order; how many rows or columns
// a call covers does not enter. So running the same at::addmm / at::mm on slices of
// the rows (forward, grad of the input) or of the columns (grad of the weight) on
// different threads gives the very bits the single call gives. Optimised BLAS
// libraries (MKL, OpenBLAS, BLIS) pick kernels by shape and are threaded already,
// so there the split is off and at::linear runs as it is.
//
// The split reproduces what PyTorch's autograd does for at::linear with a 2-D input
// (addmm(bias, x, w.t()) and AddmmBackward0): grad x = g.mm(w), grad w = g.t().mm(x),
// grad bias = sum_to(g, bias shape), each a single BLAS call per slice.
#include "common.h"

#include <ATen/Config.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/Version.h>
#include <ATen/core/LegacyTypeDispatch.h>
#include <torch/csrc/autograd/custom_function.h>

#if defined(__linux__)
#include <link.h>
#endif
#include <atomic>
#include <climits>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <cstdlib>
#include <string>

#if defined(_OPENMP) && AT_PARALLEL_OPENMP
#define SPLIT_WITH_OPENMP 1
#else
#define SPLIT_WITH_OPENMP 0
#endif

namespace tn {
namespace {

// Below this many multiply-adds a product runs whole: starting the threads costs more.
constexpr int64_t kMinMacs = 1 << 19;

struct SplitState {
  bool enabled = false;
  std::string reason;
  std::string blas;
};

#if defined(__linux__)
int CollectLibraries(struct dl_phdr_info* info, size_t, void* data) {
  if (info->dlpi_name && *info->dlpi_name) static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
  return 0;
}
#endif

// Decided once, when the addon loads: whether libtorch was built against a generic
// BLAS and the libblas the process loaded is netlib's reference implementation
// (Debian installs it as <libdir>/blas/libblas.so.3; OpenBLAS, BLIS and ATLAS use
// openblas-*/, blis-*/ and atlas/ beside it). TORCHNODE_PARALLEL_LINEAR=0 turns
// the split off; =1 forces it on (for experiments: exact only with a reference BLAS).
SplitState Detect() {
  SplitState s;
  const std::string config = at::show_config();
  const auto at_info = config.find("BLAS_INFO=");
  const std::string blas_info =
      at_info == std::string::npos ? "unknown" : config.substr(at_info + 10, config.find_first_of(", \n", at_info + 10) - at_info - 10);
  s.blas = blas_info;
  const char* env = std::getenv("TORCHNODE_PARALLEL_LINEAR");
  const std::string forced = env ? env : "";
  if (forced == "0") {
    s.reason = "off: TORCHNODE_PARALLEL_LINEAR=0";
    return s;
  }
  if (forced == "1") {
    s.enabled = true;
    s.reason = "on: TORCHNODE_PARALLEL_LINEAR=1 (forced)";
    return s;
  }
  if (blas_info != "generic") {
    s.reason = "off: libtorch's BLAS is " + blas_info + ", which threads its own products";
    return s;
  }
#if defined(__linux__)
  std::vector<std::string> libs;
  dl_iterate_phdr(CollectLibraries, &libs);
  std::string reference;
  for (const auto& lib : libs) {
    char resolved[PATH_MAX];
    const std::string real = realpath(lib.c_str(), resolved) ? std::string(resolved) : lib;
    for (const char* optimised : {"openblas", "blis", "atlas", "mkl_rt", "libmkl"}) {
      if (real.find(optimised) != std::string::npos) {
        s.reason = std::string("off: an optimised BLAS is loaded (") + real + ")";
        s.blas = blas_info + " (" + real + ")";
        return s;
      }
    }
    if (real.find("/blas/libblas.so") != std::string::npos) reference = real;
  }
  if (reference.empty()) {
    s.reason = "off: no reference libblas.so is loaded";
    return s;
  }
  s.blas = "generic (" + reference + ")";
  s.enabled = true;
  s.reason = "on: netlib's reference BLAS (" + reference + ") is single-threaded";
#else
  s.reason = "off: BLAS detection is implemented for Linux only";
#endif
  return s;
}

// Linear calls that took the split path, for tests and config().
std::atomic<int64_t> g_split_calls{0};

SplitState& State() {
  static SplitState state = Detect();
  return state;
}

// Runs body(begin, end) over [0, n) in up to at::get_num_threads() slices, each below
// autograd (so the out= calls on slices record and check nothing) and with the
// caller's thread-local state (grad mode, inference mode).
//
// With OpenMP (how libtorch is built on Linux), at::parallel_for: the same team of
// threads libtorch's own kernels use. It is a pragma in a header, so this file is
// compiled with -fopenmp, without the precompiled header, and not linked to an
// OpenMP library: its GOMP_* calls bind to the libgomp libtorch loaded. A second
// team (say, on another pool) would leave more OpenMP threads than cores, and then
// libgomp stops spinning between parallel regions, which slows every later op.
// Without OpenMP, the slices after the first go to libtorch's inter-op pool (at::launch).
template <typename F>
void ParallelSlices(int64_t n, int64_t grain, const F& body) {
  const at::ThreadLocalState tls;
  auto run = [&](int64_t begin, int64_t end) {
    at::ThreadLocalStateGuard tls_guard(tls);
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    body(begin, end);
  };
#if SPLIT_WITH_OPENMP
  at::parallel_for(0, n, grain, run);
#else
  const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n / std::max<int64_t>(1, grain)));
  const int64_t step = (n + slices - 1) / slices;
  if (slices == 1) return run(0, n);
  std::mutex mutex;
  std::condition_variable done;
  int64_t pending = 0;
  std::exception_ptr error;
  for (int64_t begin = step; begin < n; begin += step) {
    const int64_t end = std::min(n, begin + step);
    {
      std::lock_guard<std::mutex> lock(mutex);
      pending++;
    }
    at::launch([&, begin, end] {
      std::exception_ptr e;
      try {
        run(begin, end);
      } catch (...) {
        e = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (e && !error) error = e;
      if (--pending == 0) done.notify_one();
    });
  }
  std::exception_ptr own;
  try {
    run(0, std::min(n, step));
  } catch (...) {
    own = std::current_exception();
  }
  std::unique_lock<std::mutex> lock(mutex);
  done.wait(lock, [&] { return pending == 0; });
  if (own) std::rethrow_exception(own);
  if (error) std::rethrow_exception(error);
#endif
}

int64_t Grain(int64_t n, int64_t macs_per_item) {
  // At least 2 items a slice and enough work to beat the cost of a thread.
  const int64_t per = std::max<int64_t>(1, macs_per_item);
  return std::max<int64_t>(2, std::min<int64_t>(n, (1 << 16) / per));
}

// Whether the split applies to these operands at all: 2-D float/double CPU tensors
// in the layouts PyTorch's own products would see (contiguous, no lazy conj/neg).
bool Splittable(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (x.dim() != 2 || w.dim() != 2 || !x.device().is_cpu() || !w.device().is_cpu()) return false;
  const auto dtype = x.scalar_type();
  if ((dtype != at::kFloat && dtype != at::kDouble) || w.scalar_type() != dtype) return false;
  if (x.layout() != at::kStrided || w.layout() != at::kStrided || !x.is_contiguous() || !w.is_contiguous()) return false;
  if (x.is_conj() || w.is_conj() || x.is_neg() || w.is_neg()) return false;
  if (b.defined() && (b.dim() != 1 || !b.device().is_cpu() || b.scalar_type() != dtype || b.layout() != at::kStrided)) return false;
  return x.size(1) == w.size(1) && (!b.defined() || b.size(0) == w.size(0));  // otherwise at::linear reports the error
}

// Whether splitting pays: the reference BLAS is in use, there are threads to use, and
// the product is big enough.
bool Worthwhile(const at::Tensor& x, const at::Tensor& w) {
  return State().enabled && at::get_num_threads() > 1 && !at::in_parallel_region() && x.size(0) >= 4 &&
         x.size(0) * x.size(1) * w.size(0) >= kMinMacs;
}

// y = x w^T (+ b), rows of y on different threads. The bias is copied into y here,
// on the calling thread, and each slice then runs addmm with y as its own input (beta
// 1), which is what at::addmm does after its own copy: same products, same order.
// So the slices do nothing but BLAS calls: an ATen op inside a slice that used
// at::parallel_for would start a second OpenMP team on the pool thread, and with
// more OpenMP threads than cores libgomp stops spinning, which slowed every later
// parallel op of the calling thread (one-image predict: 0.4 ms -> 1.1 ms).
at::Tensor ForwardRows(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  const int64_t n = x.size(0);
  at::Tensor y = at::empty({n, w.size(0)}, x.options());
  if (b.defined()) y.copy_(b.expand({n, w.size(0)}));
  const at::Tensor wt = w.t();
  ParallelSlices(n, Grain(n, x.size(1) * w.size(0)), [&](int64_t begin, int64_t end) {
    at::Tensor out = y.narrow(0, begin, end - begin);
    if (b.defined()) at::addmm_out(out, out, x.narrow(0, begin, end - begin), wt);
    else at::mm_out(out, x.narrow(0, begin, end - begin), wt);
  });
  return y;
}

// grad x = g w, rows on different threads.
at::Tensor GradInputRows(const at::Tensor& g, const at::Tensor& w) {
  const int64_t n = g.size(0);
  at::Tensor gx = at::empty({n, w.size(1)}, g.options());
  ParallelSlices(n, Grain(n, g.size(1) * w.size(1)), [&](int64_t begin, int64_t end) {
    at::Tensor out = gx.narrow(0, begin, end - begin);
    at::mm_out(out, g.narrow(0, begin, end - begin), w);
  });
  return gx;
}

// grad w = g^T x, columns (input features) on different threads.
at::Tensor GradWeightColumns(const at::Tensor& g, const at::Tensor& x) {
  const int64_t in = x.size(1);
  at::Tensor gw = at::empty({g.size(1), in}, g.options());
  const at::Tensor gt = g.t();
  ParallelSlices(in, Grain(in, g.size(0) * g.size(1)), [&](int64_t begin, int64_t end) {
    at::Tensor out = gw.narrow(1, begin, end - begin);
    at::mm_out(out, gt, x.narrow(1, begin, end - begin));
  });
  return gw;
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The operands travel as one list, {x, w} or {x, w, b}: libtorch 1.13's custom
// functions cannot take an undefined tensor argument (they read its device).
struct RowParallelLinear : public torch::autograd::Function<RowParallelLinear> {
  static at::Tensor forward(AutogradContext* ctx, at::TensorList xwb) {
    const bool bias = xwb.size() > 2;
    ctx->save_for_backward({xwb[0], xwb[1]});
    ctx->saved_data["bias"] = bias;
    return ForwardRows(xwb[0], xwb[1], bias ? xwb[2] : at::Tensor());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    const at::Tensor& g = grads[0];
    const bool bias = ctx->saved_data["bias"].toBool();
    variable_list out(bias ? 3 : 2);
    if (!g.defined()) return out;
    // Slices only where the whole product would see the same layout; otherwise the
    // products PyTorch's AddmmBackward0 computes, whole.
    const bool split = g.dim() == 2 && g.is_contiguous() && !g.is_conj() && !g.is_neg() && g.scalar_type() == x.scalar_type() &&
                       at::get_num_threads() > 1 && !at::in_parallel_region();
    if (ctx->needs_input_grad(0)) out[0] = split ? GradInputRows(g, w) : g.mm(w);
    if (ctx->needs_input_grad(1)) out[1] = split ? GradWeightColumns(g, x) : g.t().mm(x);
    if (bias && ctx->needs_input_grad(2)) out[2] = at::sum_to(g, w.sizes().slice(0, 1));
    return out;
  }
};

}  // namespace

at::Tensor LinearOp(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& bias, c10::optional<bool> split) {
  const at::Tensor b = bias.has_value() ? *bias : at::Tensor();
  // split given: true splits whenever the operands allow (tests compare it with
  // false, the plain at::linear); left out, only where it is exact and pays.
  const bool use = Splittable(x, w, b) && (split.has_value() ? *split : Worthwhile(x, w));
  if (!use) return at::linear(x, w, bias);
  g_split_calls.fetch_add(1, std::memory_order_relaxed);
  const bool record = at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad()));
  if (!record) return ForwardRows(x, w, b);
  const variable_list xwb = b.defined() ? variable_list{x, w, b} : variable_list{x, w};
  return RowParallelLinear::apply(at::TensorList(xwb));
}

// linear(input, weight, bias?, split?)
static Napi::Value Linear(const Napi::CallbackInfo& info) {
  c10::optional<bool> split;
  if (info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull()) split = ArgBool(info, 3, "split", false);
  return Wrap(info.Env(), LinearOp(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "weight"), ArgOptTensor(info, 2, "bias"), split));
}

// linearSplitInfo(): { enabled, reason, blas, calls, threads }: whether Linear's
// products are split across threads, why, how many linear calls have been split so
// far, and on which threads ("openmp": libtorch's intra-op team; "interop": its
// inter-op pool).
static Napi::Value LinearSplitInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& s = State();
  auto o = Napi::Object::New(env);
  o.Set("enabled", Napi::Boolean::New(env, s.enabled));
  o.Set("reason", Napi::String::New(env, s.reason));
  o.Set("blas", Napi::String::New(env, s.blas));
  o.Set("calls", Napi::Number::New(env, double(g_split_calls.load(std::memory_order_relaxed))));
  o.Set("threads", Napi::String::New(env, SPLIT_WITH_OPENMP ? "openmp" : "interop"));
  return o;
}

void RegisterLinear(Napi::Env env, Napi::Object exports) {
  State();
  Export<Linear>(env, exports, "linear");
  Export<LinearSplitInfo>(env, exports, "linearSplitInfo");
}

}  // namespace tn
