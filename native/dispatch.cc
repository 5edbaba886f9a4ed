// The generic op path: any operator registered with c10's dispatcher (every ATen op,
// and those of any library loaded into the process), called boxed by name and
// overload. JS values become IValues by each argument's schema type; the returns come
// back as tensor handles, arrays and plain JS values. The typed surface over this is
// generated (scripts/gen-ops.js -> lib/ops/generated.ts).
#include "common.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/function_schema.h>
#include <ATen/core/stack.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <memory>
#include <sstream>

namespace tn {

static const napi_type_tag kOpTag = {0x4f7090a1b2c3d4e5ULL, 0x16273849aabbccddULL};

// What a JS value must be for one argument, from the argument's schema type.
enum class Base : uint8_t {
  Tensor, Int, Float, Bool, Scalar, ScalarType, Layout, Device, MemoryFormat, Str, Generator, Dimname, Unsupported,
};

struct ArgSpec {
  Base base = Base::Unsupported;
  bool optional = false;      // `T?`: null is None
  bool list = false;          // `T[]`
  bool elemOptional = false;  // `Tensor?[]`
  int32_t n = -1;             // `int[2]`: one int is repeated n times
  bool emptyOk = false;       // `int[2] stride=[]`: an empty list means "the default"
  c10::optional<c10::IValue> dflt;
  std::string name;
  std::string type;   // the schema's spelling, for messages
  std::string label;  // "aten::add.Tensor argument other (Tensor)", made once
};

struct RetSpec {
  int aliasOf = -1;  // a write-aliased return (`Tensor(a!)`): hand back that argument's handle
  Base base = Base::Unsupported;  // ScalarType / Layout / MemoryFormat ints come back as names
};

struct OpBox;
// A check run on the converted arguments before the kernel, for kernels that crash
// the process (SIGSEGV, SIGFPE) on inputs they do not check themselves.
using Precheck = void (*)(Napi::Env env, const OpBox& box, const torch::jit::Stack& stack);

struct OpBox {
  c10::OperatorHandle op;
  std::string qualified;  // aten::add.Tensor
  Precheck precheck = nullptr;
  const char* refused = nullptr;  // why this op is not callable at all
  std::vector<ArgSpec> args;
  std::vector<RetSpec> rets;
  explicit OpBox(c10::OperatorHandle h) : op(std::move(h)) {}
};

static Base BaseOf(const std::string& s) {
  if (s == "Tensor") return Base::Tensor;
  if (s == "int" || s == "SymInt") return Base::Int;
  if (s == "float") return Base::Float;
  if (s == "bool") return Base::Bool;
  if (s == "Scalar") return Base::Scalar;
  if (s == "ScalarType") return Base::ScalarType;
  if (s == "Layout") return Base::Layout;
  if (s == "Device") return Base::Device;
  if (s == "MemoryFormat") return Base::MemoryFormat;
  if (s == "str") return Base::Str;
  if (s == "Generator") return Base::Generator;
  return Base::Unsupported;
}

// The schema parser reads `Dimname` as `str`, so a named-tensor argument is told
// apart by its overload's name (`sum.dim_DimnameList`, `max.names_dim`) or its own.
static bool LooksLikeDimname(const std::string& overload, const std::string& arg) {
  std::string o = overload;
  for (char& c : o) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (o.find("dimname") != std::string::npos || o.find("names") != std::string::npos) return true;
  return arg == "dim" || arg == "dims" || arg == "dim0" || arg == "dim1" || arg == "names" || arg == "out_dim" ||
         arg == "start_dim" || arg == "end_dim" || arg == "outdim" || arg == "order";
}

static ArgSpec SpecOf(const c10::Argument& a, const std::string& op, const std::string& overload) {
  ArgSpec s;
  const c10::TypePtr& t = compat::RealType(a);
  std::string ty = t->str();
  s.type = ty;
  s.name = a.name();
  std::string core = ty;
  if (!core.empty() && core.back() == '?') {
    s.optional = true;
    core.pop_back();
  }
  if (core.size() > 2 && core.compare(core.size() - 2, 2, "[]") == 0) {
    s.list = true;
    core.resize(core.size() - 2);
    if (!core.empty() && core.back() == '?') {
      s.elemOptional = true;
      core.pop_back();
    }
  }
  s.base = BaseOf(core);
  if (s.base == Base::Str && LooksLikeDimname(overload, a.name())) s.base = Base::Dimname;
  // Element-optional lists are only passed for tensors (index, index_put).
  if (s.elemOptional && s.base != Base::Tensor) s.base = Base::Unsupported;
  if (s.list && s.base != Base::Tensor && s.base != Base::Int && s.base != Base::Float && s.base != Base::Bool &&
      s.base != Base::Scalar && s.base != Base::Str && s.base != Base::Dimname) {
    s.base = Base::Unsupported;
  }
  if (s.base == Base::Generator && !s.optional) s.base = Base::Unsupported;
  if (a.N()) s.n = *a.N();
  s.dflt = a.default_value();
  s.emptyOk = s.dflt && s.dflt->isList() && s.dflt->toListRef().empty();
  if (s.n > 0) s.type = core + "[" + std::to_string(s.n) + "]" + (s.optional ? "?" : "");
  s.label = op + " argument " + a.name() + " (" + s.type + ")";
  return s;
}

// ---- kernels that do not check their inputs ------------------------------------
// Found by test/ops.test.ts's fuzz (random arguments of every kind) on libtorch 1.13:
// each of these crashed the process on some input instead of raising an error.
// Where the missing check is small it is made here; otherwise the op is refused.

static int64_t StackInt(const torch::jit::Stack& st, size_t i) { return st[i].isInt() ? st[i].toInt() : 0; }

static void NonEmptyTensors(Napi::Env env, const OpBox& box, const torch::jit::Stack& st) {
  if (st[0].isTensorList() && st[0].toTensorList().size() == 0) ThrowTorch(env, box.qualified + ": expected at least one tensor");
}
static void PositiveGroups(Napi::Env env, const OpBox& box, const torch::jit::Stack& st) {
  if (StackInt(st, 1) <= 0 && st[1].isInt()) ThrowTorch(env, box.qualified + ": Number of groups to divide channels in must be positive. Value of groups:" + std::to_string(StackInt(st, 1)));
}
static void Blocksize2(Napi::Env env, const OpBox& box, const torch::jit::Stack& st) {
  if (st[1].isIntList() && st[1].toIntList().size() != 2) ThrowTorch(env, box.qualified + ": blocksize needs to be a list of 2 integers");
}

static void ScaleFactor(Napi::Env env, const OpBox& box, const torch::jit::Stack& st) {
  // factor^2 overflows to 0 and the kernel divides by it.
  const int64_t f = StackInt(st, 1);
  if (f <= 0 || f > (int64_t{1} << 31)) ThrowTorch(env, box.qualified + ": the scale factor must be in 1..2^31, got " + std::to_string(f));
}
// The polynomial kernels loop n times per element: a huge n hangs the process.
static constexpr double kMaxDegree = 1e5;
static void PolynomialDegree(Napi::Env env, const OpBox& box, const torch::jit::Stack& st) {
  const c10::IValue& n = st[1];
  double worst = 0;
  if (n.isTensor()) {
    const at::Tensor& t = n.toTensor();
    if (t.numel() > 0 && !t.is_complex()) worst = t.detach().abs().max().to(at::kDouble).item<double>();
  } else if (n.isScalar()) {
    worst = std::fabs(n.toScalar().toDouble());
  }
  if (!(worst <= kMaxDegree)) {
    ThrowTorch(env, box.qualified + ": n must be at most " + std::to_string(static_cast<int64_t>(kMaxDegree)) +
                        " (the kernel loops n times per element)");
  }
}
static void LuPivots(Napi::Env env, const OpBox& box, const torch::jit::Stack& st) {
  if (!st[0].isTensor() || !st[1].isTensor()) return;
  const at::Tensor& lu = st[0].toTensor();
  const at::Tensor& piv = st[1].toTensor();
  bool ok = lu.dim() >= 2 && piv.dim() == lu.dim() - 1 && piv.scalar_type() == at::kInt;
  for (int64_t d = 0; ok && d < lu.dim() - 2; d++) ok = piv.size(d) == lu.size(d);
  if (ok) ok = piv.size(-1) == std::min(lu.size(-2), lu.size(-1));
  if (!ok) ThrowTorch(env, box.qualified + ": LU_pivots must be int32 with shape LU_data.shape[:-2] + [min(m, n)]");
}

static void EmbeddingBag(Napi::Env env, const OpBox& box, const torch::jit::Stack& st) {
  // (weight, indices, offsets, scale_grad_by_freq, mode, ...): F.embedding_bag's own checks.
  const int64_t mode = StackInt(st, 4);
  bool ok = st[4].isInt() && mode >= 0 && mode <= 2 && st[0].isTensor() && st[1].isTensor() && st[2].isTensor();
  if (ok) {
    const at::Tensor& w = st[0].toTensor();
    const at::Tensor& idx = st[1].toTensor();
    const at::Tensor& off = st[2].toTensor();
    ok = w.dim() == 2 && idx.dim() == 1 && off.dim() == 1;
  }
  if (!ok) ThrowTorch(env, box.qualified + ": expected a 2-D weight, 1-D indices and offsets, and mode 0 (sum), 1 (mean) or 2 (max)");
}

static void Histogramdd(Napi::Env env, const OpBox& box, const torch::jit::Stack& st) {
  // (self, bins, range, ...): one bin count (or edge tensor) per coordinate, two range ends each.
  if (!st[0].isTensor()) return;
  const at::Tensor& self = st[0].toTensor();
  const int64_t d = self.dim() >= 1 ? self.size(-1) : -1;
  bool ok = self.dim() >= 2;
  if (ok && st[1].isIntList()) ok = static_cast<int64_t>(st[1].toIntList().size()) == d;
  if (ok && st[1].isTensorList()) ok = static_cast<int64_t>(st[1].toTensorList().size()) == d;
  if (ok && st.size() > 2 && st[2].isDoubleList()) ok = static_cast<int64_t>(st[2].toDoubleList().size()) == 2 * d;
  if (!ok) ThrowTorch(env, box.qualified + ": expected input of at least 2 dimensions (N, D), D bins and 2*D range values");
}

struct Hazard {
  const char* name;
  Precheck check;       // null: refused
  const char* refused;  // why, when refused
};
static const Hazard kHazards[] = {
    {"aten::align_tensors", NonEmptyTensors, nullptr},
    {"aten::native_channel_shuffle", nullptr, "it divides by zero on sizes it does not check (use channel_shuffle)"},
    {"aten::channel_shuffle", PositiveGroups, nullptr},
    {"aten::pixel_shuffle", ScaleFactor, nullptr},
    {"aten::pixel_unshuffle", ScaleFactor, nullptr},
    {"aten::lu_unpack", LuPivots, nullptr},
    {"aten::histogramdd", Histogramdd, nullptr},
    {"aten::embedding_bag", EmbeddingBag, nullptr},
    {"aten::thnn_conv2d", nullptr, "it is an internal kernel that does not check its shapes (use conv2d)"},
    {"aten::slow_conv3d", nullptr, "it is an internal kernel that does not check its shapes (use conv3d)"},
    {"aten::slow_conv_dilated2d", nullptr, "it is an internal kernel that does not check its shapes (use conv2d)"},
    {"aten::slow_conv_dilated3d", nullptr, "it is an internal kernel that does not check its shapes (use conv3d)"},
    {"aten::slow_conv_transpose2d", nullptr, "it is an internal kernel that does not check its shapes (use conv_transpose2d)"},
    {"aten::slow_conv_transpose3d", nullptr, "it is an internal kernel that does not check its shapes (use conv_transpose3d)"},
    {"aten::to_sparse_bsr", Blocksize2, nullptr},
    {"aten::to_sparse_bsc", Blocksize2, nullptr},
    {"aten::special_chebyshev_polynomial_t", PolynomialDegree, nullptr},
    {"aten::special_chebyshev_polynomial_u", PolynomialDegree, nullptr},
    {"aten::special_chebyshev_polynomial_v", PolynomialDegree, nullptr},
    {"aten::special_chebyshev_polynomial_w", PolynomialDegree, nullptr},
    {"aten::special_shifted_chebyshev_polynomial_t", PolynomialDegree, nullptr},
    {"aten::special_shifted_chebyshev_polynomial_u", PolynomialDegree, nullptr},
    {"aten::special_shifted_chebyshev_polynomial_v", PolynomialDegree, nullptr},
    {"aten::special_shifted_chebyshev_polynomial_w", PolynomialDegree, nullptr},
    {"aten::special_hermite_polynomial_h", PolynomialDegree, nullptr},
    {"aten::special_hermite_polynomial_he", PolynomialDegree, nullptr},
    {"aten::special_laguerre_polynomial_l", PolynomialDegree, nullptr},
    {"aten::special_legendre_polynomial_p", PolynomialDegree, nullptr},
    {"aten::quantized_lstm_cell", nullptr, "it reads packed quantized weights without checking them"},
    {"aten::quantized_gru_cell", nullptr, "it reads packed quantized weights without checking them"},
    {"aten::quantized_rnn_relu_cell", nullptr, "it reads packed quantized weights without checking them"},
    {"aten::quantized_rnn_tanh_cell", nullptr, "it reads packed quantized weights without checking them"},
    {"aten::slow_conv3d_forward", nullptr, "it is an internal kernel that does not check its shapes (use conv3d)"},
    {"aten::choose_qparams_optimized", nullptr, "it reads `numel` elements of input without checking the size"},
};

// An op handle is a type-tagged napi_external (as tensor handles are: cheaper to
// unwrap on every call than a wrapped object).
static OpBox* Unbox(const Napi::Value& v) {
  napi_valuetype type = napi_undefined;
  bool tagged = false;
  if (napi_typeof(v.Env(), v, &type) != napi_ok || type != napi_external ||
      napi_check_object_type_tag(v.Env(), v, &kOpTag, &tagged) != napi_ok || !tagged) {
    ThrowType(v.Env(), "Expected an op handle (from opHandle) but received " + Describe(v));
  }
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(v.Env(), napi_get_value_external(v.Env(), v, &data), nullptr);
  return static_cast<OpBox*>(data);
}

static void FinalizeOp(Napi::node_addon_api_basic_env, void* data, void*) { delete static_cast<OpBox*>(data); }

// opSchemas() -> [{ name: 'aten::add', overload: 'Tensor', schema: 'aten::add.Tensor(Tensor self, ...) -> Tensor' }]
static Napi::Value OpSchemas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& d = c10::Dispatcher::singleton();
  const std::vector<c10::OperatorName> names = d.getAllOpNames();
  auto out = Napi::Array::New(env);
  uint32_t k = 0;
  for (const auto& n : names) {
    auto h = d.findSchema(n);
    if (!h || !h->hasSchema()) continue;
    std::ostringstream os;
    os << h->schema();
    auto o = Napi::Object::New(env);
    o.Set("name", n.name);
    o.Set("overload", n.overload_name);
    o.Set("schema", os.str());
    out.Set(k++, o);
  }
  return out;
}

// opHandle(name, overload) -> a handle for callOp. An op this libtorch does not have
// is a TorchError naming it and the version.
static Napi::Value OpHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = ArgString(info, 0, "name");
  const std::string overload = IsNullish(info, 1) ? std::string() : ArgString(info, 1, "overload");
  auto h = c10::Dispatcher::singleton().findSchema(c10::OperatorName(name, overload));
  const std::string q = overload.empty() ? name : name + "." + overload;
  if (!h || !h->hasSchema()) ThrowTorch(env, "op " + q + " is not in libtorch " + compat::TorchVersion());
  auto box = std::make_unique<OpBox>(*h);
  box->qualified = q;
  for (const auto& hz : kHazards) {
    if (name == hz.name) {
      box->precheck = hz.check;
      box->refused = hz.refused;
    }
  }
  const c10::FunctionSchema& schema = h->schema();
  for (const auto& a : schema.arguments()) box->args.push_back(SpecOf(a, q, overload));
  for (const auto& r : schema.returns()) {
    RetSpec rs;
    const c10::AliasInfo* ra = r.alias_info();
    if (ra && ra->isWrite()) {
      for (size_t j = 0; j < schema.arguments().size(); j++) {
        const c10::AliasInfo* aa = schema.arguments()[j].alias_info();
        if (aa && aa->isWrite() && aa->beforeSets() == ra->beforeSets() && box->args[j].base == Base::Tensor &&
            !box->args[j].list) {
          rs.aliasOf = static_cast<int>(j);
          break;
        }
      }
    }
    rs.base = BaseOf(compat::RealType(r)->str());
    box->rets.push_back(rs);
  }
  napi_value ext = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_create_external(env, box.get(), FinalizeOp, nullptr, &ext), Napi::Value());
  box.release();
  NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, ext, &kOpTag), Napi::Value());
  return Napi::Value(env, ext);
}

// ---- JS -> IValue ---------------------------------------------------------

static at::Layout ParseLayout(Napi::Env env, const std::string& s, const std::string& label) {
  if (s == "strided") return at::kStrided;
  if (s == "sparse_coo" || s == "sparse") return at::kSparse;
  if (s == "sparse_csr") return at::kSparseCsr;
  if (s == "sparse_csc") return at::kSparseCsc;
  if (s == "sparse_bsr") return at::kSparseBsr;
  if (s == "sparse_bsc") return at::kSparseBsc;
  if (s == "mkldnn") return at::kMkldnn;
  ThrowType(env, "Expected one of 'strided', 'sparse_coo', 'sparse_csr', 'sparse_csc', 'sparse_bsr', 'sparse_bsc', 'mkldnn' for " +
                     label + " but received '" + s + "'");
}

static const char* LayoutName(at::Layout l) {
  switch (l) {
    case at::kStrided: return "strided";
    case at::kSparse: return "sparse_coo";
    case at::kSparseCsr: return "sparse_csr";
    case at::kSparseCsc: return "sparse_csc";
    case at::kSparseBsr: return "sparse_bsr";
    case at::kSparseBsc: return "sparse_bsc";
    case at::kMkldnn: return "mkldnn";
    default: return "unknown";
  }
}

static const char* MemoryFormatName(at::MemoryFormat m) {
  switch (m) {
    case at::MemoryFormat::Contiguous: return "contiguous_format";
    case at::MemoryFormat::ChannelsLast: return "channels_last";
    case at::MemoryFormat::ChannelsLast3d: return "channels_last_3d";
    case at::MemoryFormat::Preserve: return "preserve_format";
    default: return "unknown";
  }
}

static std::string Expected(const char* what, const ArgSpec& s, const Napi::Value& v) {
  return std::string("Expected ") + what + " for " + s.label + " but received " + Describe(v);
}

static c10::IValue ListToIValue(const Napi::CallbackInfo& info, size_t i, const ArgSpec& s) {
  Napi::Env env = info.Env();
  Napi::Value v = info[i];
  const char* label = s.label.c_str();
  switch (s.base) {
    case Base::Tensor: {
      if (!s.elemOptional) return c10::IValue(ArgTensorList(info, i, label));
      if (!v.IsArray()) ThrowType(env, Expected("an array of Tensors or nulls", s, v));
      auto arr = v.As<Napi::Array>();
      c10::List<c10::optional<at::Tensor>> out;
      out.reserve(arr.Length());
      for (uint32_t k = 0; k < arr.Length(); k++) {
        Napi::Value e = arr.Get(k);
        if (e.IsNull() || e.IsUndefined()) {
          out.push_back(c10::nullopt);
          continue;
        }
        if (!TensorWrap::Is(e)) {
          ThrowType(env, "Expected a Tensor or null for " + s.label + "[" + std::to_string(k) + "] but received " + Describe(e));
        }
        TensorBox* b = TensorWrap::Box(e);
        if (!b->t.defined()) ThrowType(env, "Tensor " + s.label + "[" + std::to_string(k) + "] has been disposed");
        out.push_back(b->t);
      }
      return c10::IValue(std::move(out));
    }
    case Base::Int: {
      if (!v.IsArray() && !v.IsNumber() && !v.IsBigInt()) ThrowType(env, Expected("an integer or an array of integers", s, v));
      std::vector<int64_t> l = ArgIntList(info, i, label);
      // Kernels index an `int[N]` (N >= 2) argument up to N without checking its length
      // (reflection_pad1d, to_sparse_bsr crashed on []), so the length is checked here:
      // N values, one value repeated, or none where the schema's default is []. (`int[1]`
      // is PyTorch's "one int or any list", as sum's dims.)
      if (s.n >= 2 && l.size() != static_cast<size_t>(s.n)) {
        if (l.size() == 1) {
          l.assign(static_cast<size_t>(s.n), l[0]);
        } else if (!(l.empty() && s.emptyOk)) {
          ThrowRange(env, "Expected one integer or a list of " + std::to_string(s.n) + " for " + s.label + " but received " +
                              std::to_string(l.size()) + " values");
        }
      }
      return c10::IValue(std::move(l));
    }
    case Base::Float:
    case Base::Bool:
    case Base::Scalar:
    case Base::Str: {
      const bool one = !v.IsArray();
      if (one && s.n <= 1) ThrowType(env, Expected("an array", s, v));
      Napi::Array arr = one ? Napi::Array::New(env) : v.As<Napi::Array>();
      const uint32_t len = one ? static_cast<uint32_t>(s.n) : arr.Length();
      if (!one && s.n >= 2 && len != static_cast<uint32_t>(s.n) && !(len == 0 && s.emptyOk)) {
        ThrowRange(env, "Expected a list of " + std::to_string(s.n) + " values for " + s.label + " but received " +
                            std::to_string(len) + " values");
      }
      auto elem = [&](uint32_t k) { return one ? v : arr.Get(k); };
      auto bad = [&](const char* what, uint32_t k, const Napi::Value& e) {
        ThrowType(env, std::string("Expected ") + what + " for " + s.label + "[" + std::to_string(k) + "] but received " + Describe(e));
      };
      if (s.base == Base::Float) {
        std::vector<double> out(len);
        for (uint32_t k = 0; k < len; k++) {
          Napi::Value e = elem(k);
          if (!e.IsNumber()) bad("a number", k, e);
          out[k] = e.As<Napi::Number>().DoubleValue();
        }
        return c10::IValue(std::move(out));
      }
      if (s.base == Base::Bool) {
        c10::List<bool> out;
        for (uint32_t k = 0; k < len; k++) {
          Napi::Value e = elem(k);
          if (!e.IsBoolean()) bad("a boolean", k, e);
          out.push_back(e.As<Napi::Boolean>().Value());
        }
        return c10::IValue(std::move(out));
      }
      if (s.base == Base::Str) {
        c10::List<std::string> out;
        for (uint32_t k = 0; k < len; k++) {
          Napi::Value e = elem(k);
          if (!e.IsString()) bad("a string", k, e);
          out.push_back(e.As<Napi::String>().Utf8Value());
        }
        return c10::IValue(std::move(out));
      }
      c10::impl::GenericList out(c10::NumberType::get());
      for (uint32_t k = 0; k < len; k++) {
        Napi::Value e = elem(k);
        if (!IsScalar(e)) bad("a number", k, e);
        Napi::Value cur = e;
        if (cur.IsNumber()) {
          double d = cur.As<Napi::Number>().DoubleValue();
          if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740991.0) {
            out.push_back(c10::IValue(static_cast<int64_t>(d)));
          } else {
            out.push_back(c10::IValue(d));
          }
        } else if (cur.IsBoolean()) {
          out.push_back(c10::IValue(cur.As<Napi::Boolean>().Value()));
        } else {
          bool lossless = true;
          int64_t r = cur.As<Napi::BigInt>().Int64Value(&lossless);
          if (!lossless) bad("a 64-bit integer", k, e);
          out.push_back(c10::IValue(r));
        }
      }
      return c10::IValue(std::move(out));
    }
    default:
      break;
  }
  ThrowType(env, s.label + ": torchnode cannot pass this list type yet");
}

static c10::IValue ToIValue(const Napi::CallbackInfo& info, size_t i, const ArgSpec& s) {
  Napi::Env env = info.Env();
  Napi::Value v = info[i];
  const char* label = s.label.c_str();
  if (s.list) return ListToIValue(info, i, s);
  switch (s.base) {
    case Base::Tensor: return c10::IValue(ArgTensor(info, i, label));
    case Base::Int: return c10::IValue(ArgInt(info, i, label));
    case Base::Float: {
      if (v.IsBigInt()) return c10::IValue(static_cast<double>(ArgInt(info, i, label)));
      return c10::IValue(ArgDouble(info, i, label));
    }
    case Base::Bool: {
      if (!v.IsBoolean()) ThrowType(env, Expected("a boolean", s, v));
      return c10::IValue(v.As<Napi::Boolean>().Value());
    }
    case Base::Scalar: {
      // A 0-dim tensor stands for its value, keeping its type (a float tensor's 3 is
      // 3.0), as PyTorch's argument parser takes it; lib/ops/runtime.ts passes one only
      // when nothing else fits.
      if (TensorWrap::Is(v)) {
        const at::Tensor& t = ArgTensor(info, i, label);
        if (t.dim() != 0) ThrowType(env, Expected("a number or a 0-dim tensor", s, v));
        return c10::IValue(t.item());
      }
      if (!IsScalar(v)) ThrowType(env, Expected("a number", s, v));
      return c10::IValue(ArgScalar(info, i, label));
    }
    case Base::ScalarType: return c10::IValue(ArgDtype(info, i, label));
    case Base::Layout: return c10::IValue(ParseLayout(env, ArgString(info, i, label), s.label));
    case Base::Device: return c10::IValue(ArgDevice(info, i, label));
    case Base::MemoryFormat: {
      if (!v.IsString()) ThrowType(env, Expected("a memory format name", s, v));
      return c10::IValue(ArgMemoryFormat(info, i, label, at::MemoryFormat::Contiguous));
    }
    case Base::Str: return c10::IValue(ArgString(info, i, label));
    case Base::Generator: {
      auto g = ArgOptGenerator(info, i, label);
      return g ? c10::IValue(*g) : c10::IValue();
    }
    default: break;
  }
  ThrowType(env, s.label + ": unreachable argument kind");
}

// ---- IValue -> JS ---------------------------------------------------------

static Napi::Value FromIValue(Napi::Env env, const c10::IValue& v, Base hint);

static Napi::Value IntValue(Napi::Env env, int64_t x, Base hint) {
  switch (hint) {
    case Base::ScalarType: return Napi::String::New(env, DtypeName(static_cast<at::ScalarType>(x)));
    case Base::Layout: return Napi::String::New(env, LayoutName(static_cast<at::Layout>(x)));
    case Base::MemoryFormat: return Napi::String::New(env, MemoryFormatName(static_cast<at::MemoryFormat>(x)));
    default: break;
  }
  if (x > 9007199254740991LL || x < -9007199254740991LL) return Napi::BigInt::New(env, x);
  return Napi::Number::New(env, static_cast<double>(x));
}

static Napi::Value FromIValue(Napi::Env env, const c10::IValue& v, Base hint) {
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    if (!t.defined()) return env.Null();
    return Wrap(env, t);
  }
  if (v.isNone()) return env.Null();
  if (v.isInt()) return IntValue(env, v.toInt(), hint);
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isDevice()) return Napi::String::New(env, DeviceName(v.toDevice()));
  if (v.isTensorList()) {
    auto l = v.toTensorList();
    auto arr = Napi::Array::New(env, l.size());
    for (size_t k = 0; k < l.size(); k++) {
      at::Tensor t = l.get(k);
      arr.Set(static_cast<uint32_t>(k), t.defined() ? Wrap(env, t) : env.Null());
    }
    return arr;
  }
  if (v.isIntList()) {
    auto l = v.toIntList();
    auto arr = Napi::Array::New(env, l.size());
    for (size_t k = 0; k < l.size(); k++) arr.Set(static_cast<uint32_t>(k), IntValue(env, l.get(k), Base::Int));
    return arr;
  }
  if (v.isDoubleList()) {
    auto l = v.toDoubleList();
    auto arr = Napi::Array::New(env, l.size());
    for (size_t k = 0; k < l.size(); k++) arr.Set(static_cast<uint32_t>(k), Napi::Number::New(env, l.get(k)));
    return arr;
  }
  if (v.isBoolList()) {
    auto l = v.toBoolList();
    auto arr = Napi::Array::New(env, l.size());
    for (size_t k = 0; k < l.size(); k++) arr.Set(static_cast<uint32_t>(k), Napi::Boolean::New(env, l.get(k)));
    return arr;
  }
  if (v.isList()) {
    auto l = v.toListRef();
    auto arr = Napi::Array::New(env, l.size());
    for (size_t k = 0; k < l.size(); k++) arr.Set(static_cast<uint32_t>(k), FromIValue(env, l[k], Base::Unsupported));
    return arr;
  }
  if (v.isTuple()) {
    const auto& el = v.toTupleRef().elements();
    auto arr = Napi::Array::New(env, el.size());
    for (size_t k = 0; k < el.size(); k++) arr.Set(static_cast<uint32_t>(k), FromIValue(env, el[k], Base::Unsupported));
    return arr;
  }
  if (v.isComplexDouble()) {
    c10::complex<double> c = v.toComplexDouble();
    auto arr = Napi::Array::New(env, 2);
    arr.Set(0u, Napi::Number::New(env, c.real()));
    arr.Set(1u, Napi::Number::New(env, c.imag()));
    return arr;
  }
  if (v.isGenerator()) return env.Undefined();
  ThrowTorch(env, std::string("torchnode cannot return a value of type ") + v.tagKind() + " yet");
}

// callOp(handle, ...args): the arguments in the schema's order; `undefined` takes
// the schema's default. Returns one value, an array for several returns, or
// undefined for none. A write-aliased return (`add_`'s self) is the handle passed in.
static Napi::Value CallOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpBox* box = Unbox(info[0]);
  if (box->refused) ThrowTorch(env, "op " + box->qualified + " is not callable through torchnode: " + box->refused);
  const size_t nargs = box->args.size();
  if (info.Length() > nargs + 1) {
    ThrowType(env, box->qualified + " takes " + std::to_string(nargs) + " arguments but received " +
                       std::to_string(info.Length() - 1));
  }
  // One stack per thread, reused: no allocation per call. A call made while one is
  // converting its arguments (a getter on an array element calling back in) gets its
  // own. Cleared on every exit, so no tensor stays alive in it.
  thread_local torch::jit::Stack shared;
  thread_local bool busy = false;
  torch::jit::Stack own;
  const bool mine = !busy;
  torch::jit::Stack& stack = mine ? shared : own;
  stack.clear();
  if (mine) busy = true;
  struct Clear {
    torch::jit::Stack& s;
    bool release;
    ~Clear() {
      s.clear();
      if (release) busy = false;
    }
  } clear{stack, mine};
  for (size_t k = 0; k < nargs; k++) {
    const ArgSpec& s = box->args[k];
    const size_t i = k + 1;
    Napi::Value v = info[i];
    if (s.base == Base::Unsupported || s.base == Base::Dimname) {
      if (v.IsUndefined() && s.dflt) {
        stack.push_back(*s.dflt);
        continue;
      }
      ThrowType(env, "op " + box->qualified + ": argument " + s.name + " has schema type " + (s.base == Base::Dimname ? std::string("Dimname") : s.type) +
                         ", which torchnode cannot pass yet");
    }
    if (v.IsUndefined()) {
      if (s.dflt) {
        stack.push_back(*s.dflt);
        continue;
      }
      ThrowType(env, "Missing " + s.label + ": it has no default");
    }
    if (v.IsNull()) {
      if (s.optional) {
        stack.emplace_back();
        continue;
      }
      ThrowType(env, "Expected a value for " + s.label + " but received null (it is not optional)");
    }
    stack.push_back(ToIValue(info, i, s));
  }
  if (box->precheck) box->precheck(env, *box, stack);
  box->op.callBoxed(stack);
  const size_t nret = box->rets.size();
  auto one = [&](size_t r) -> Napi::Value {
    const RetSpec& rs = box->rets[r];
    if (rs.aliasOf >= 0) return info[static_cast<size_t>(rs.aliasOf) + 1];
    if (stack[r].isTensor()) {
      at::Tensor t = std::move(stack[r]).toTensor();
      return t.defined() ? Wrap(env, std::move(t)) : env.Null();
    }
    return FromIValue(env, stack[r], rs.base);
  };
  if (stack.size() != nret) ThrowTorch(env, box->qualified + " returned " + std::to_string(stack.size()) + " values");
  if (nret == 0) return env.Undefined();
  if (nret == 1) return one(0);
  auto arr = Napi::Array::New(env, nret);
  for (size_t r = 0; r < nret; r++) arr.Set(static_cast<uint32_t>(r), one(r));
  return arr;
}

// opArgs(handle) -> [{ name, type, kind, hasDefault, kwargOnly }]: what the handle made of the schema.
static Napi::Value OpArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  OpBox* box = Unbox(info[0]);
  const auto& schema = box->op.schema();
  auto arr = Napi::Array::New(env, box->args.size());
  for (size_t k = 0; k < box->args.size(); k++) {
    const ArgSpec& s = box->args[k];
    auto o = Napi::Object::New(env);
    o.Set("name", schema.arguments()[k].name());
    o.Set("type", s.type);
    o.Set("supported", s.base != Base::Unsupported && s.base != Base::Dimname);
    o.Set("hasDefault", s.dflt.has_value());
    o.Set("kwargOnly", schema.arguments()[k].kwarg_only());
    arr.Set(static_cast<uint32_t>(k), o);
  }
  return arr;
}

void RegisterDispatch(Napi::Env env, Napi::Object exports) {
  Export<OpSchemas>(env, exports, "opSchemas");
  Export<OpHandle>(env, exports, "opHandle");
  Export<CallOp>(env, exports, "callOp");
  Export<OpArgs>(env, exports, "opArgs");
}

}  // namespace tn
