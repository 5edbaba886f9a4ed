// PyTorch's distributed engine (c10d): a TCPStore rendezvous, Gloo (CPU) and, where
// libtorch has it, NCCL (GPU) process groups, the collectives, and a gradient
// reducer that all-reduces buckets of gradients while backward still runs (the
// mechanism of DistributedDataParallel). Every blocking step runs on a libuv
// worker thread (Napi::AsyncWorker) and resolves a Promise: the JS thread never waits.
//
// Compiled only where libtorch ships c10d and Gloo's headers are present
// (Debian: libgloo-dev); elsewhere the functions exist and say why they can't run.
#include "common.h"

#if __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>) && __has_include(<gloo/algorithm.h>) && \
    defined(USE_C10D_GLOO) && !defined(TORCHNODE_NO_DISTRIBUTED)
#define TORCHNODE_WITH_C10D 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <net/if.h>
#if defined(USE_C10D_NCCL) && defined(TORCHNODE_WITH_CUDA)
#define TORCHNODE_WITH_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

#include <chrono>
#include <memory>
#include <mutex>

namespace tn {

#ifdef TORCHNODE_WITH_C10D

static const napi_type_tag kGroupTag = {0x5c0d5c0d11223344ULL, 0x5566778899aabbccULL};

struct GroupBox {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef TORCHNODE_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  int rank = 0;
  int size = 1;
  std::string backend;
  std::chrono::milliseconds timeout{0};
  bool destroyed = false;
};

using GroupPtr = std::shared_ptr<GroupBox>;

// The group's backend, referenced on the JS thread when a collective is called: destroy()
// resets g->gloo on a libuv thread, possibly while this collective still waits in the
// queue behind one blocked on a lost peer (as StoreSet does for the store).
struct PGRef {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef TORCHNODE_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  bool destroyed = false;
};
static PGRef TakePG(const GroupBox& g) {
  PGRef r;
  r.gloo = g.gloo;
#ifdef TORCHNODE_WITH_NCCL
  r.nccl = g.nccl;
#endif
  r.destroyed = g.destroyed;
  return r;
}

// Calls f(processGroup) on whichever backend the group has.
template <typename F>
static auto WithPG(const PGRef& g, F f) {
#ifdef TORCHNODE_WITH_NCCL
  if (g.nccl) return f(*g.nccl);
#endif
  if (!g.gloo) throw std::runtime_error(g.destroyed ? "the process group has been destroyed" : "the process group has no backend yet");
  return f(*g.gloo);
}
template <typename F>
static auto WithPG(GroupBox& g, F f) {
  return WithPG(TakePG(g), f);
}

static void FinalizeGroup(Napi::node_addon_api_basic_env, void* data, void*) { delete static_cast<GroupPtr*>(data); }

static Napi::Object WrapGroup(Napi::Env env, GroupPtr g) {
  Napi::Object obj = Napi::Object::New(env);
  obj.TypeTag(&kGroupTag);
  auto* holder = new GroupPtr(std::move(g));
  NAPI_THROW_IF_FAILED(env, napi_wrap(env, obj, holder, FinalizeGroup, nullptr, nullptr), obj);
  return obj;
}

static GroupPtr ArgGroup(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kGroupTag)) {
    ThrowType(info.Env(), "Expected a ProcessGroup for group but received " + Describe(v));
  }
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(info.Env(), napi_unwrap(info.Env(), v, &data), nullptr);
  GroupPtr g = *static_cast<GroupPtr*>(data);
  if (g->destroyed) throw Napi::Error::New(info.Env(), "The process group has been destroyed");
  return g;
}

// An AsyncWorker that resolves a promise with the JS value made by `done` (on
// the JS thread) after `work` (on a libuv thread) returns; any exception (c10d's
// c10::Error, Gloo's EnforceNotMet/IoException, whatever work->wait() rethrows
// from Gloo's worker threads, or anything else) rejects it as a TorchError
// "<what>: <libtorch's or Gloo's message>". What this cannot catch: an exception
// thrown on Gloo's own transport thread (tcp/pair.cc, e.g. "op.preamble.length <=
// op.nbytes" when ranks send different sizes) calls std::terminate inside Gloo;
// lib/distributed checks that ranks agree on dtype and shape before each collective
// so that such a mismatch never reaches Gloo.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<void()>;
  using Done = std::function<Napi::Value(Napi::Env)>;
  PromiseWorker(Napi::Env env, std::string what, Work work, Done done)
      : Napi::AsyncWorker(env, "torchnode:c10d"),
        deferred_(Napi::Promise::Deferred::New(env)),
        what_(std::move(what)),
        work_(std::move(work)),
        done_(std::move(done)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const c10::Error& e) {
      SetError(what_ + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(what_ + ": " + e.what());
    } catch (...) {
      SetError(what_ + ": unknown error (not a std::exception)");
    }
  }
  // Both run on the JS thread, called by node-addon-api, and must not throw: while
  // the environment is being torn down (worker.terminate(), process.exit()) settling
  // the promise fails, and there is nobody left to tell.
  void OnOK() override {
    Napi::Env env = Env();
    try {
      Napi::Value value;
      try {
        value = done_ ? done_(env) : env.Undefined();
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
        return;
      } catch (const std::exception& e) {
        deferred_.Reject(Napi::Error::New(env, e.what()).Value());
        return;
      }
      deferred_.Resolve(value);
    } catch (...) {
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::Env env = Env();
    try {
      std::string msg = e.Message();
      Napi::Value err;
      try {
        ThrowTorch(env, msg);
      } catch (const Napi::Error& te) {
        err = te.Value();
      }
      deferred_.Reject(err);
    } catch (...) {
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string what_;
  Work work_;
  Done done_;
};

static Napi::Value Queue(Napi::Env env, const char* what, PromiseWorker::Work work, PromiseWorker::Done done = nullptr) {
  auto* w = new PromiseWorker(env, what, std::move(work), std::move(done));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

static c10d::ReduceOp ParseOp(Napi::Env env, const std::string& op) {
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "max") return c10d::ReduceOp::MAX;
  ThrowType(env, "Expected 'sum', 'product', 'min' or 'max' for op but received '" + op + "'");
}

// The rendezvous is split in two so that lib/distributed can run its own join step
// in between (every rank writes join/<rank> and a heartbeat; a rank that never joins
// or stops beating is named at once, instead of every rank waiting out c10d's and
// then Gloo's timeout):
//   distConnect(backend, store, masterAddr, masterPort, worldSize, rank, timeoutMs, filePath) -> Promise<group>
//     store 'tcp': rank 0 hosts a TCPStore at masterAddr:masterPort (listening on every
//     interface: c10d has no bind-address option), the others connect to it.
//     store 'file': a FileStore at filePath (one machine or a shared file system; no socket).
//   distInitBackend(group, ifnames[], ifnameSource, hostname) -> Promise<void>: the Gloo or NCCL group.
static Napi::Value Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string backend = ArgString(info, 0, "backend");
  std::string kind = ArgString(info, 1, "store");
  std::string addr = ArgString(info, 2, "masterAddr");
  int64_t port = ArgInt(info, 3, "masterPort");
  int64_t world = ArgInt(info, 4, "worldSize");
  int64_t rank = ArgInt(info, 5, "rank");
  int64_t timeoutMs = ArgInt(info, 6, "timeoutMs");
  std::string file = IsNullish(info, 7) ? std::string() : ArgString(info, 7, "filePath");
  if (kind != "tcp" && kind != "file") ThrowType(env, "Expected 'tcp' or 'file' for store but received '" + kind + "'");
  if (kind == "file" && file.empty()) ThrowType(env, "Expected a file path for filePath with a 'file' store");
  if (port < 1 || port > 65535) ThrowType(env, "Expected a port in 1..65535 for masterPort but received " + std::to_string(port));
  if (world < 1) ThrowType(env, "Expected a positive integer for worldSize but received " + std::to_string(world));
  if (world > std::numeric_limits<int>::max()) ThrowRange(env, "Expected at most 2^31 - 1 for worldSize but received " + std::to_string(world));
  if (rank < 0 || rank >= world) {
    ThrowType(env, "Expected a rank in 0.." + std::to_string(world - 1) + " for rank but received " + std::to_string(rank));
  }
  if (timeoutMs < 1) ThrowType(env, "Expected a positive timeout for timeoutMs but received " + std::to_string(timeoutMs));
  // Gloo and the store convert timeouts to nanoseconds (int64): keep that from overflowing.
  constexpr int64_t kMaxTimeoutMs = int64_t(1) << 40;
  if (timeoutMs > kMaxTimeoutMs) ThrowRange(env, "Expected at most 2^40 for timeoutMs but received " + std::to_string(timeoutMs));
  if (backend == "nccl") {
#ifndef TORCHNODE_WITH_NCCL
    ThrowTorch(env, "Backend 'nccl' is not available: this libtorch was built without NCCL (CPU build); use 'gloo'");
#endif
  } else if (backend != "gloo") {
    ThrowType(env, "Expected 'gloo' or 'nccl' for backend but received '" + backend + "'");
  }
  auto g = std::make_shared<GroupBox>();
  g->rank = static_cast<int>(rank);
  g->size = static_cast<int>(world);
  g->backend = backend;
  g->timeout = std::chrono::milliseconds(timeoutMs);
  return Queue(
      env, "initProcessGroup",
      [g, kind, addr, port, file]() {
        if (kind == "file") {
          auto store = c10::make_intrusive<c10d::FileStore>(file, g->size);
          store->setTimeout(g->timeout);
          g->store = store;
          return;
        }
        c10d::TCPStoreOptions opts;
        opts.port = static_cast<std::uint16_t>(port);
        opts.isServer = g->rank == 0;
        opts.numWorkers = static_cast<std::size_t>(g->size);
        // Joining is lib/distributed's step (join/<rank> keys and heartbeats), which can
        // name a rank that never came; the store's own wait would only time out.
        opts.waitWorkers = false;
        opts.timeout = g->timeout;
        compat::UseClassicTCPStore(opts);
        g->store = c10::make_intrusive<c10d::TCPStore>(addr, opts);
      },
      [g](Napi::Env env) -> Napi::Value { return WrapGroup(env, g); });
}

// The interfaces this machine has, for an error message.
static std::string InterfaceNames() {
  std::string out;
  struct if_nameindex* list = if_nameindex();
  if (!list) return "unknown";
  for (auto* i = list; i->if_index != 0 && i->if_name; i++) out += (out.empty() ? "" : ", ") + std::string(i->if_name);
  if_freenameindex(list);
  return out.empty() ? "none" : out;
}

static Napi::Value InitBackend(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  std::vector<std::string> ifnames;
  if (!IsNullish(info, 1)) {
    if (!info[1].IsArray()) ThrowType(info.Env(), "Expected an array of interface names for ifnames but received " + Describe(info[1]));
    auto arr = info[1].As<Napi::Array>();
    if (arr.Length() > 64) ThrowRange(info.Env(), "Expected at most 64 interface names for ifnames but received " + std::to_string(arr.Length()));
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsString() || v.As<Napi::String>().Utf8Value().empty() || v.As<Napi::String>().Utf8Value().size() >= IF_NAMESIZE) {
        ThrowType(info.Env(), "Expected an interface name (1.." + std::to_string(IF_NAMESIZE - 1) + " characters) for ifnames[" +
                                  std::to_string(i) + "] but received " + Describe(v));
      }
      ifnames.push_back(v.As<Napi::String>().Utf8Value());
    }
  }
  std::string source = IsNullish(info, 2) ? "ifnames" : ArgString(info, 2, "ifnameSource");
  std::string hostname = IsNullish(info, 3) ? std::string() : ArgString(info, 3, "hostname");
  if (g->gloo) ThrowTorch(info.Env(), "initBackend: the process group already has its backend");
  return Queue(info.Env(), "initProcessGroup", [g, ifnames, source, hostname]() {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("torchnode/" + g->backend, g->store);
#ifdef TORCHNODE_WITH_NCCL
    if (g->backend == "nccl") {
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = g->timeout;
      g->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, g->rank, g->size, o);
      return;
    }
#endif
    auto o = c10d::ProcessGroupGloo::Options::create(g->timeout);
    // As PyTorch's own bindings do: GLOO_SOCKET_IFNAME names the interfaces, comma-separated;
    // else loopback when every rank is local, else the address this host's name resolves to.
    for (const auto& name : ifnames) {
      try {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      } catch (const std::exception& e) {
        throw std::runtime_error(source + ": no usable network interface '" + name + "' on this machine (it has: " + InterfaceNames() +
                                 "): " + (dynamic_cast<const c10::Error*>(&e) ? dynamic_cast<const c10::Error*>(&e)->what_without_backtrace() : e.what()));
      }
    }
    if (ifnames.empty()) {
      try {
        o->devices.push_back(hostname.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                              : c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string("Gloo could not pick a network interface") +
                                 (hostname.empty() ? " from this host's name" : " for " + hostname) +
                                 "; set GLOO_SOCKET_IFNAME to the interface to use (this machine has: " + InterfaceNames() + "): " +
                                 (dynamic_cast<const c10::Error*>(&e) ? dynamic_cast<const c10::Error*>(&e)->what_without_backtrace() : e.what()));
      }
    }
    g->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, g->rank, g->size, o);
  });
}

// storeCheck(group, keys[]) -> Promise<boolean[]>: which keys are set, without waiting.
static Napi::Value StoreCheck(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  if (!info[1].IsArray()) ThrowType(info.Env(), "Expected an array of keys for keys but received " + Describe(info[1]));
  auto arr = info[1].As<Napi::Array>();
  std::vector<std::string> keys;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) ThrowType(info.Env(), "Expected a string for keys[" + std::to_string(i) + "] but received " + Describe(v));
    keys.push_back(v.As<Napi::String>().Utf8Value());
  }
  auto out = std::make_shared<std::vector<bool>>();
  c10::intrusive_ptr<c10d::Store> store = g->store;  // see StoreSet
  return Queue(
      info.Env(), "store check",
      [store, keys, out]() {
        for (const auto& k : keys) out->push_back(store->check({k}));
      },
      [out](Napi::Env env) -> Napi::Value {
        auto a = Napi::Array::New(env, out->size());
        for (size_t i = 0; i < out->size(); i++) a.Set(static_cast<uint32_t>(i), Napi::Boolean::New(env, (*out)[i]));
        return a;
      });
}

static Napi::Value GroupInfo(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("rank", g->rank);
  o.Set("worldSize", g->size);
  o.Set("backend", g->backend);
  o.Set("timeoutMs", static_cast<double>(g->timeout.count()));
  return o;
}

// allReduce(group, tensors[], op) -> Promise<void>: in place, like dist.all_reduce.
static Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  auto tensors = ArgTensorList(info, 1, "tensors");
  c10d::AllreduceOptions opts;
  opts.reduceOp = ParseOp(info.Env(), IsNullish(info, 2) ? "sum" : ArgString(info, 2, "op"));
  PGRef pgr = TakePG(*g);
  return Queue(info.Env(), "allReduce", [g, pgr, tensors, opts]() mutable {
    auto work = WithPG(pgr, [&](auto& pg) { return pg.allreduce(tensors, opts); });
    work->wait(g->timeout);
  });
}

// broadcast(group, tensors[], root) -> Promise<void>
static Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  auto tensors = ArgTensorList(info, 1, "tensors");
  int64_t root = ArgInt(info, 2, "root", 0);
  if (root < 0 || root >= g->size) ThrowType(info.Env(), "Expected a rank in 0.." + std::to_string(g->size - 1) + " for root but received " + std::to_string(root));
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  PGRef pgr = TakePG(*g);
  return Queue(info.Env(), "broadcast", [g, pgr, tensors, opts]() mutable {
    // One tensor per call keeps every backend happy (Gloo takes one per rank-local device).
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      auto work = WithPG(pgr, [&](auto& pg) { return pg.broadcast(one, opts); });
      work->wait(g->timeout);
    }
  });
}

// allGather(group, input) -> Promise<Tensor[]> (one per rank)
static Napi::Value AllGather(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  at::Tensor input = ArgTensor(info, 1, "input");
  auto outputs = std::make_shared<std::vector<std::vector<at::Tensor>>>(1);
  for (int r = 0; r < g->size; r++) (*outputs)[0].push_back(at::empty_like(input));
  PGRef pgr = TakePG(*g);
  return Queue(
      info.Env(), "allGather",
      [g, pgr, input, outputs]() {
        std::vector<at::Tensor> in{input};
        auto work = WithPG(pgr, [&](auto& pg) { return pg.allgather(*outputs, in); });
        work->wait(g->timeout);
      },
      [outputs](Napi::Env env) -> Napi::Value { return WrapList(env, (*outputs)[0]); });
}

static Napi::Value Barrier(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  PGRef pgr = TakePG(*g);
  return Queue(info.Env(), "barrier", [g, pgr]() {
    c10d::BarrierOptions opts;
    opts.timeout = g->timeout;
    auto work = WithPG(pgr, [&](auto& pg) { return pg.barrier(opts); });
    work->wait(g->timeout);
  });
}

// Store access, for liveness (heartbeats) and small coordination values.
static Napi::Value StoreSet(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  std::string key = ArgString(info, 1, "key");
  std::string value = ArgString(info, 2, "value");
  // The store is taken here, on the JS thread, not read from g on the libuv thread:
  // destroy() resets g->store on another libuv thread while a heartbeat may still be
  // queued behind a store op blocked on a lost peer (seen: SIGSEGV in TCPStore::set).
  c10::intrusive_ptr<c10d::Store> store = g->store;
  return Queue(info.Env(), "store set", [store, key, value]() { store->set(key, std::vector<uint8_t>(value.begin(), value.end())); });
}
static Napi::Value StoreGet(const Napi::CallbackInfo& info) {
  GroupPtr g = ArgGroup(info, 0);
  std::string key = ArgString(info, 1, "key");
  auto out = std::make_shared<std::string>();
  c10::intrusive_ptr<c10d::Store> store = g->store;  // see StoreSet
  return Queue(
      info.Env(), "store get",
      [store, key, out]() {
        if (!store->check({key})) throw std::runtime_error("key '" + key + "' is not in the store");
        auto v = store->get(key);
        out->assign(v.begin(), v.end());
      },
      [out](Napi::Env env) -> Napi::Value { return Napi::String::New(env, *out); });
}

static Napi::Value DestroyProcessGroup(const Napi::CallbackInfo& info) {
  Napi::Value v = info[0];
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kGroupTag)) {
    ThrowType(info.Env(), "Expected a ProcessGroup for group but received " + Describe(v));
  }
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(info.Env(), napi_unwrap(info.Env(), v, &data), info.Env().Undefined());
  GroupPtr g = *static_cast<GroupPtr*>(data);
  if (g->destroyed) return info.Env().Undefined();
  g->destroyed = true;
  // Dropping the last references joins Gloo's threads; do it off the JS thread.
  return Queue(info.Env(), "destroyProcessGroup", [g]() {
    g->gloo.reset();
#ifdef TORCHNODE_WITH_NCCL
    g->nccl.reset();
#endif
    g->store.reset();
  });
}

// ---- gradient reducer: DDP's bucketed all-reduce, overlapping backward ----
//
// Parameters are split into buckets in reverse order (the order backward makes
// their gradients). A hook on each parameter copies its gradient into its bucket;
// when a bucket is full its all-reduce starts at once on Gloo's threads, while
// backward goes on computing earlier layers. finish() waits for all buckets,
// averages, and writes the result into each parameter's .grad.

static const napi_type_tag kReducerTag = {0x7e4dc0de7e4dc0deULL, 0x1234abcd5678ef01ULL};

struct Bucket {
  at::Tensor flat;
  std::vector<size_t> params;    // indices into Reducer::params
  std::vector<int64_t> offsets;  // element offset of each param in flat
  size_t pending = 0;
  c10::intrusive_ptr<c10d::Work> work;
};

struct Reducer {
  GroupPtr group;
  std::vector<at::Tensor> params;
  std::vector<size_t> bucketOf;
  std::vector<Bucket> buckets;
  std::vector<unsigned> hooks;
  std::mutex mu;
  std::string error;
  bool active = false;

  void Launch(Bucket& b) {
    std::vector<at::Tensor> one{b.flat};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    b.work = WithPG(*group, [&](auto& pg) { return pg.allreduce(one, opts); });
  }

  // Runs inside autograd's backward (a tensor hook): nothing may escape it. A
  // failure is kept and reported by finish().
  void OnGrad(size_t i, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mu);
    if (!active || !error.empty()) return;
    try {
      Bucket& b = buckets[bucketOf[i]];
      size_t k = std::find(b.params.begin(), b.params.end(), i) - b.params.begin();
      at::NoGradGuard ng;
      b.flat.narrow(0, b.offsets[k], grad.numel()).copy_(grad.reshape({-1}));
      if (--b.pending == 0) Launch(b);
    } catch (const c10::Error& e) {
      error = std::string("GradReducer bucket all-reduce: ") + e.what_without_backtrace();
    } catch (const std::exception& e) {
      error = std::string("GradReducer bucket all-reduce: ") + e.what();
    } catch (...) {
      error = "GradReducer bucket all-reduce: unknown error (not a std::exception)";
    }
  }
};

using ReducerPtr = std::shared_ptr<Reducer>;

static void FinalizeReducer(Napi::node_addon_api_basic_env, void* data, void*) {
  auto* holder = static_cast<ReducerPtr*>(data);
  // Hooks hold only weak pointers, so freeing here is safe even if they remain.
  delete holder;
}

static ReducerPtr ArgReducer(const Napi::CallbackInfo& info, size_t i) {
  Napi::Value v = info[i];
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kReducerTag)) {
    ThrowType(info.Env(), "Expected a GradReducer for reducer but received " + Describe(v));
  }
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(info.Env(), napi_unwrap(info.Env(), v, &data), nullptr);
  return *static_cast<ReducerPtr*>(data);
}

// createReducer(group, params[], bucketCapBytes) -> reducer
static Napi::Value CreateReducer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GroupPtr g = ArgGroup(info, 0);
  auto params = ArgTensorList(info, 1, "params");
  int64_t cap = ArgInt(info, 2, "bucketCapBytes", 1 << 20);
  if (cap < 1) ThrowType(env, "Expected a positive bucketCapBytes but received " + std::to_string(cap));
  auto r = std::make_shared<Reducer>();
  r->group = g;
  r->params = params;
  r->bucketOf.resize(params.size());
  for (size_t k = 0; k < params.size(); k++) {
    if (!params[k].requires_grad()) ThrowType(env, "params[" + std::to_string(k) + "] does not require grad");
  }
  // Reverse order: the last layer's gradients are ready first.
  Bucket cur;
  int64_t curBytes = 0, curNumel = 0;
  auto close = [&]() {
    if (cur.params.empty()) return;
    cur.flat = at::zeros({curNumel}, params[cur.params[0]].options().requires_grad(false));
    r->buckets.push_back(std::move(cur));
    cur = Bucket();
    curBytes = 0;
    curNumel = 0;
  };
  for (size_t j = params.size(); j-- > 0;) {
    const at::Tensor& p = params[j];
    if (!cur.params.empty() && p.scalar_type() != params[cur.params[0]].scalar_type()) close();
    cur.params.push_back(j);
    cur.offsets.push_back(curNumel);
    r->bucketOf[j] = r->buckets.size();
    curNumel += p.numel();
    curBytes += p.numel() * p.element_size();
    if (curBytes >= cap) close();
  }
  close();
  std::weak_ptr<Reducer> weak = r;
  for (size_t k = 0; k < params.size(); k++) {
    r->hooks.push_back(params[k].register_hook([weak, k](const at::Tensor& grad) {
      if (auto rr = weak.lock()) rr->OnGrad(k, grad);
      return at::Tensor();  // leave the gradient as it is
    }));
  }
  Napi::Object obj = Napi::Object::New(env);
  obj.TypeTag(&kReducerTag);
  NAPI_THROW_IF_FAILED(env, napi_wrap(env, obj, new ReducerPtr(r), FinalizeReducer, nullptr, nullptr), obj);
  obj.Set("buckets", Napi::Number::New(env, static_cast<double>(r->buckets.size())));
  return obj;
}

// reducerPrepare(reducer): arm the hooks for one backward pass.
static Napi::Value ReducerPrepare(const Napi::CallbackInfo& info) {
  ReducerPtr r = ArgReducer(info, 0);
  std::lock_guard<std::mutex> lock(r->mu);
  r->error.clear();
  for (auto& b : r->buckets) {
    b.pending = b.params.size();
    b.work.reset();
    b.flat.zero_();
  }
  r->active = true;
  return info.Env().Undefined();
}

// reducerFinish(reducer) -> Promise<void>: wait for every bucket (launching any a
// parameter without gradient left open), average, write .grad.
static Napi::Value ReducerFinish(const Napi::CallbackInfo& info) {
  ReducerPtr r = ArgReducer(info, 0);
  {
    std::lock_guard<std::mutex> lock(r->mu);
    r->active = false;
    if (!r->error.empty()) ThrowTorch(info.Env(), r->error);
  }
  return Queue(info.Env(), "GradReducer.finish", [r]() {
    std::lock_guard<std::mutex> lock(r->mu);
    for (auto& b : r->buckets) {
      if (!b.work) r->Launch(b);  // unused parameters contribute zeros, like find_unused_parameters
    }
    for (auto& b : r->buckets) {
      if (!b.work) throw std::runtime_error("a bucket's all-reduce was never started");
      b.work->wait(r->group->timeout);
    }
    at::NoGradGuard ng;
    double inv = 1.0 / r->group->size;
    for (auto& b : r->buckets) {
      b.flat.mul_(inv);
      for (size_t k = 0; k < b.params.size(); k++) {
        at::Tensor& p = r->params[b.params[k]];
        at::Tensor avg = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
        if (p.grad().defined()) p.mutable_grad().copy_(avg);
        else p.mutable_grad() = avg.clone();
      }
    }
  });
}

static Napi::Value Available(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("gloo", true);
#ifdef TORCHNODE_WITH_NCCL
  o.Set("nccl", true);
#else
  o.Set("nccl", false);
#endif
  o.Set("reason", env.Null());
  return o;
}

#else  // no c10d in this build

static const char* kNoC10d =
#ifdef TORCHNODE_NO_DISTRIBUTED
    "torchnode was built without PyTorch's distributed engine: TORCHNODE_NO_DISTRIBUTED=1 was set at build time; "
    "rebuild without it (node scripts/build-native.js --clean)";
#else
    "torchnode was built without PyTorch's distributed engine: libtorch's c10d headers or Gloo's headers "
    "(Debian/Ubuntu: apt-get install libgloo-dev) were missing at build time; install them and rebuild (npm rebuild torchnode)";
#endif

static Napi::Value Unavailable(const Napi::CallbackInfo& info) { ThrowTorch(info.Env(), kNoC10d); }
static Napi::Value Available(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("gloo", false);
  o.Set("nccl", false);
  o.Set("reason", kNoC10d);
  return o;
}
#define Connect Unavailable
#define InitBackend Unavailable
#define StoreCheck Unavailable
#define GroupInfo Unavailable
#define AllReduce Unavailable
#define Broadcast Unavailable
#define AllGather Unavailable
#define Barrier Unavailable
#define StoreSet Unavailable
#define StoreGet Unavailable
#define DestroyProcessGroup Unavailable
#define CreateReducer Unavailable
#define ReducerPrepare Unavailable
#define ReducerFinish Unavailable

#endif

void RegisterDistributed(Napi::Env env, Napi::Object exports) {
  Export<Available>(env, exports, "distAvailable");
  Export<Connect>(env, exports, "distConnect");
  Export<InitBackend>(env, exports, "distInitBackend");
  Export<StoreCheck>(env, exports, "distStoreCheck");
  Export<GroupInfo>(env, exports, "distInfo");
  Export<AllReduce>(env, exports, "distAllReduce");
  Export<Broadcast>(env, exports, "distBroadcast");
  Export<AllGather>(env, exports, "distAllGather");
  Export<Barrier>(env, exports, "distBarrier");
  Export<StoreSet>(env, exports, "distStoreSet");
  Export<StoreGet>(env, exports, "distStoreGet");
  Export<DestroyProcessGroup>(env, exports, "distDestroy");
  Export<CreateReducer>(env, exports, "distCreateReducer");
  Export<ReducerPrepare>(env, exports, "distReducerPrepare");
  Export<ReducerFinish>(env, exports, "distReducerFinish");
}

}  // namespace tn
