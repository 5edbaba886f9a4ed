// The wrapped tensor, the error guard's helpers, argument conversion and the
// functions that move data between JS memory and tensors.
#include "common.h"

#include <cstring>
#include <sstream>

namespace tn {

std::atomic<int64_t> gLiveTensors{0};
// Handles made, freed by dispose(), and freed by the garbage collector: the
// first minus the second tells whether code disposes what it makes, whenever GC runs.
static std::atomic<int64_t> gCreated{0}, gDisposed{0}, gCollected{0};
std::atomic<int64_t> gLiveBytes{0};

// Random 128-bit tags: an object from another addon (or a plain JS object) can
// never be unwrapped as a tensor, so a wrong argument is a TypeError, not UB.
static const napi_type_tag kTensorTag = {0x9b1c2d3e4f506172ULL, 0x8394a5b6c7d8e9f0ULL};

AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// ---- errors ---------------------------------------------------------------

// With lib/errors.ts's stable codes (ERROR_CODES.argType, .outOfRange), as Node's own errors have.
void ThrowType(Napi::Env env, const std::string& msg) {
  Napi::Error e = Napi::TypeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  throw e;
}
void ThrowRange(Napi::Env env, const std::string& msg) {
  Napi::Error e = Napi::RangeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  throw e;
}

Napi::Value RaiseInJs(napi_env env, const Napi::Error* err) noexcept {
  napi_value value = nullptr;
  if (err) {
    try {
      value = err->Value();
    } catch (...) {
      value = nullptr;
    }
  }
  if (value == nullptr) {
    napi_value msg = nullptr;
    if (napi_create_string_utf8(env, "torchnode: a native call failed", NAPI_AUTO_LENGTH, &msg) == napi_ok) {
      napi_create_error(env, nullptr, msg, &value);
    }
  }
  bool pending = false;
  // An exception already pending (from JS the call ran) goes on as it is. napi_throw
  // fails (napi_cannot_run_js) once the environment is terminating: nothing to do then.
  if (value != nullptr && napi_is_exception_pending(env, &pending) == napi_ok && !pending) {
    try {
      auto* d = Napi::Env(env).GetInstanceData<AddonData>();
      if (d != nullptr && !d->errorBox.IsEmpty()) return d->errorBox.New({Napi::Value(env, value)});
    } catch (...) {
      // Boxing failed: throw it after all.
    }
    napi_throw(env, value);
  }
  return Napi::Value();
}

void ThrowTorch(Napi::Env env, const std::string& raw) {
  // libtorch appends "Exception raised from ..." lines in some builds; keep the message.
  std::string msg = raw;
  auto pos = msg.find("\nException raised from");
  if (pos != std::string::npos) msg.erase(pos);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  AddonData& d = Data(env);
  if (!d.torchError.IsEmpty()) {
    Napi::Object err = d.torchError.New({Napi::String::New(env, msg)});
    throw Napi::Error(env, err);
  }
  Napi::Error e = Napi::Error::New(env, msg);
  e.Value().Set("name", "TorchError");
  throw e;
}

std::string Describe(const Napi::Value& v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return v.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_number: {
      std::ostringstream os;
      os << v.As<Napi::Number>().DoubleValue();
      return os.str();
    }
    case napi_string: {
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s.size() > 40) s = s.substr(0, 40) + "...";
      return "'" + s + "'";
    }
    case napi_bigint: return "a bigint";
    case napi_function: return "a function";
    case napi_external: return TensorWrap::Is(v) ? "a Tensor" : "an external";
    case napi_symbol: return "a symbol";
    default:
      if (v.IsArray()) return "an array";
      if (TensorWrap::Is(v)) return "a Tensor";
      if (v.IsTypedArray()) return "a TypedArray";
      return "an object";
  }
}

static std::string Expected(const char* what, const char* name, const Napi::Value& v) {
  return std::string("Expected ") + what + " for " + name + " but received " + Describe(v);
}

// ---- TensorWrap -----------------------------------------------------------

static void ReleaseBytes(Napi::node_addon_api_basic_env env, TensorBox* box) {
  if (!box->t.defined()) return;
  box->t = at::Tensor();
  gLiveTensors--;
  gLiveBytes -= box->reported;
  if (box->reported > 0 && box->cpu) {
    int64_t adjusted = 0;
    napi_adjust_external_memory(env, -box->reported, &adjusted);
  }
  box->reported = 0;
}

// Runs inside V8's GC (a basic finalizer): frees libtorch memory at once, and
// touches no JS.
static void FinalizeBox(Napi::node_addon_api_basic_env env, void* data, void* /*hint*/) {
  auto* box = static_cast<TensorBox*>(data);
  if (box->t.defined()) gCollected++;
  ReleaseBytes(env, box);
  delete box;
}

void TensorWrap::Release(napi_env env, TensorBox* box) {
  if (box->t.defined()) gDisposed++;
  ReleaseBytes(env, box);
}

bool TensorWrap::Is(const Napi::Value& v) {
  napi_valuetype type = napi_undefined;
  bool tagged = false;
  return napi_typeof(v.Env(), v, &type) == napi_ok && type == napi_external &&
         napi_check_object_type_tag(v.Env(), v, &kTensorTag, &tagged) == napi_ok && tagged;
}

TensorBox* TensorWrap::Box(const Napi::Value& v) {
  void* data = nullptr;
  NAPI_THROW_IF_FAILED(v.Env(), napi_get_value_external(v.Env(), v, &data), nullptr);
  return static_cast<TensorBox*>(data);
}

Napi::Value TensorWrap::New(Napi::Env env, at::Tensor t) {
  auto box = std::make_unique<TensorBox>();
  int64_t bytes = 0;
  if (t.defined() && t.has_storage()) bytes = static_cast<int64_t>(t.storage().nbytes());
  box->cpu = !t.defined() || t.device().is_cpu();
  box->t = std::move(t);
  napi_value ext = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_create_external(env, box.get(), FinalizeBox, nullptr, &ext), Napi::Value());
  // From here the finalizer owns the box.
  TensorBox* b = box.release();
  NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, ext, &kTensorTag), Napi::Value());
  Napi::Value obj(env, ext);
  if (b->t.defined()) {
    b->reported = bytes;
    gLiveTensors++;
    gCreated++;
    gLiveBytes += bytes;
    // Only CPU bytes press on the host heap; tell V8 so GC runs as native memory grows.
    if (bytes > 0 && b->cpu) Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  }
  return obj;
}

// ---- arguments ------------------------------------------------------------

bool IsNullish(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsUndefined() || info[i].IsNull();
}

at::Tensor& ArgTensor(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!TensorWrap::Is(v)) ThrowType(info.Env(), Expected("a Tensor", name, v));
  TensorBox* b = TensorWrap::Box(v);
  if (!b->t.defined()) throw Napi::Error::New(info.Env(), std::string("Tensor ") + name + " has been disposed");
  return b->t;
}

c10::optional<at::Tensor> ArgOptTensor(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info, i)) return c10::nullopt;
  return ArgTensor(info, i, name);
}

std::vector<at::Tensor> ArgTensorList(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsArray()) ThrowType(info.Env(), Expected("an array of Tensors", name, v));
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value e = arr.Get(k);
    if (!TensorWrap::Is(e)) {
      ThrowType(info.Env(), std::string("Expected a Tensor for ") + name + "[" + std::to_string(k) +
                                "] but received " + Describe(e));
    }
    TensorBox* b = TensorWrap::Box(e);
    if (!b->t.defined()) {
      throw Napi::Error::New(info.Env(), std::string("Tensor ") + name + "[" + std::to_string(k) + "] has been disposed");
    }
    out.push_back(b->t);
  }
  return out;
}

static int64_t ToInt(Napi::Env env, const Napi::Value& v, const char* name) {
  if (v.IsBigInt()) {
    bool lossless = true;
    int64_t r = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) ThrowType(env, std::string("Expected a 64-bit integer for ") + name + " but received a bigint out of range");
    return r;
  }
  if (!v.IsNumber()) ThrowType(env, Expected("an integer", name, v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9007199254740991.0) {
    ThrowType(env, Expected("an integer", name, v));
  }
  return static_cast<int64_t>(d);
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ToInt(info.Env(), info[i], name);
}
int64_t ArgInt(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t dflt) {
  return IsNullish(info, i) ? dflt : ToInt(info.Env(), info[i], name);
}
c10::optional<int64_t> ArgOptInt(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info, i)) return c10::nullopt;
  return ToInt(info.Env(), info[i], name);
}

uint64_t ArgSeed(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (v.IsBigInt()) {
    bool lossless = true;
    uint64_t r = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) {
      // Negative seeds wrap like PyTorch's (Python ints are taken modulo 2^64).
      int64_t s = v.As<Napi::BigInt>().Int64Value(&lossless);
      if (!lossless) ThrowType(info.Env(), std::string("Expected a seed in [-2^63, 2^64) for ") + name);
      return static_cast<uint64_t>(s);
    }
    return r;
  }
  return static_cast<uint64_t>(ToInt(info.Env(), v, name));
}

double ArgDouble(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) ThrowType(info.Env(), Expected("a number", name, v));
  return v.As<Napi::Number>().DoubleValue();
}
double ArgDouble(const Napi::CallbackInfo& info, size_t i, const char* name, double dflt) {
  return IsNullish(info, i) ? dflt : ArgDouble(info, i, name);
}

bool ArgBool(const Napi::CallbackInfo& info, size_t i, const char* name, bool dflt) {
  if (IsNullish(info, i)) return dflt;
  Napi::Value v = info[i];
  if (!v.IsBoolean()) ThrowType(info.Env(), Expected("a boolean", name, v));
  return v.As<Napi::Boolean>().Value();
}

static std::string ListString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t k = 0; k < v.size() && k < 8; k++) s += (k ? ", " : "") + std::to_string(v[k]);
  if (v.size() > 8) s += ", ... (" + std::to_string(v.size()) + " values)";
  return s + "]";
}

static std::string RangeString(int64_t min, int64_t max) {
  if (max == std::numeric_limits<int64_t>::max()) return ">= " + std::to_string(min);
  return "in " + std::to_string(min) + ".." + std::to_string(max);
}

static void CheckIntRange(Napi::Env env, int64_t v, const std::string& name, int64_t min, int64_t max) {
  if (v < min || v > max) {
    ThrowRange(env, "Expected an integer " + RangeString(min, max) + " for " + name + " but received " + std::to_string(v));
  }
}

int64_t ArgIntIn(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min, int64_t max) {
  int64_t v = ArgInt(info, i, name);
  CheckIntRange(info.Env(), v, name, min, max);
  return v;
}
int64_t ArgIntIn(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t dflt, int64_t min, int64_t max) {
  int64_t v = ArgInt(info, i, name, dflt);
  CheckIntRange(info.Env(), v, name, min, max);
  return v;
}

std::vector<int64_t> ArgIntList(const Napi::CallbackInfo& info, size_t i, const char* name, size_t minLen, size_t maxLen,
                                int64_t min, int64_t max) {
  // Checked before the elements are read, so a huge array costs nothing.
  Napi::Value v = info[i];
  if (v.IsArray()) {
    size_t n = v.As<Napi::Array>().Length();
    if (n < minLen || n > maxLen) {
      std::string want = minLen == maxLen ? std::to_string(minLen) : std::to_string(minLen) + ".." + std::to_string(maxLen);
      ThrowRange(info.Env(), std::string("Expected a list of ") + want + " integers for " + name + " but received " +
                                 std::to_string(n) + " values");
    }
  }
  std::vector<int64_t> out = ArgIntList(info, i, name);
  if (out.size() < minLen || out.size() > maxLen) {
    ThrowRange(info.Env(), std::string("Expected a list of ") + std::to_string(minLen) + ".." + std::to_string(maxLen) +
                               " integers for " + name + " but received " + ListString(out));
  }
  for (size_t k = 0; k < out.size(); k++) {
    if (out[k] < min || out[k] > max) {
      ThrowRange(info.Env(), std::string("Expected integers ") + RangeString(min, max) + " for " + name + " but received " +
                                 ListString(out) + " (" + name + "[" + std::to_string(k) + "] = " + std::to_string(out[k]) + ")");
    }
  }
  return out;
}

std::vector<int64_t> ArgIntTuple(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n, int64_t min, int64_t max) {
  std::vector<int64_t> v = ArgIntList(info, i, name, 1, n, min, max);
  if (v.size() == 1) return std::vector<int64_t>(n, v[0]);
  if (v.size() != n) {
    ThrowRange(info.Env(), std::string("Expected one integer or a list of ") + std::to_string(n) + " for " + name +
                               " but received " + ListString(v));
  }
  return v;
}

std::vector<int64_t> ArgShape(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ArgIntList(info, i, name, 0, kMaxDims, 0, std::numeric_limits<int64_t>::max());
}

std::vector<int64_t> ArgIntList(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (v.IsNumber() || v.IsBigInt()) return {ToInt(info.Env(), v, name)};
  if (!v.IsArray()) ThrowType(info.Env(), Expected("an array of integers", name, v));
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value e = arr.Get(k);
    std::string nm = std::string(name) + "[" + std::to_string(k) + "]";
    out[k] = ToInt(info.Env(), e, nm.c_str());
  }
  return out;
}

c10::optional<std::vector<int64_t>> ArgOptIntList(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info, i)) return c10::nullopt;
  return ArgIntList(info, i, name);
}

bool IsScalar(const Napi::Value& v) { return v.IsNumber() || v.IsBoolean() || v.IsBigInt(); }

at::Scalar ArgScalar(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    // Integral JS numbers stay integral so int tensors keep their dtype (like Python ints).
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740991.0) {
      return at::Scalar(static_cast<int64_t>(d));
    }
    return at::Scalar(d);
  }
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) return at::Scalar(ToInt(info.Env(), v, name));
  ThrowType(info.Env(), Expected("a number", name, v));
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsString()) ThrowType(info.Env(), Expected("a string", name, v));
  return v.As<Napi::String>().Utf8Value();
}

// The one table of dtypes: PyTorch's names (torch.float32 -> 'float32') and its
// aliases (torch.float, torch.long, ...). ParseDtype, DtypeName and the error text
// all come from it; lib/tensor.ts's DTYPES lists the same names.
struct DtypeEntry {
  at::ScalarType type;
  const char* name;
  const char* alias;
  const char* alias2;
};
static const DtypeEntry kDtypes[] = {
    {at::kFloat, "float32", "float", nullptr},      {at::kDouble, "float64", "double", nullptr},
    {at::kHalf, "float16", "half", nullptr},        {at::kBFloat16, "bfloat16", nullptr, nullptr},
    {at::kLong, "int64", "long", nullptr},          {at::kInt, "int32", "int", nullptr},
    {at::kShort, "int16", "short", nullptr},        {at::kChar, "int8", nullptr, nullptr},
    {at::kByte, "uint8", nullptr, nullptr},         {at::kBool, "bool", nullptr, nullptr},
    {at::kComplexFloat, "complex64", "cfloat", nullptr}, {at::kComplexDouble, "complex128", "cdouble", nullptr},
};

at::ScalarType ParseDtype(Napi::Env env, const std::string& s, const char* name) {
  for (const auto& d : kDtypes) {
    if (s == d.name || (d.alias && s == d.alias) || (d.alias2 && s == d.alias2)) return d.type;
  }
  std::string names;
  for (const auto& d : kDtypes) names += (names.empty() ? "" : ", ") + std::string(d.name);
  ThrowType(env, "Expected one of " + names + " for " + name + " but received '" + s + "'");
}

const char* DtypeName(at::ScalarType t) {
  for (const auto& d : kDtypes) {
    if (d.type == t) return d.name;
  }
  return "unsupported";
}

at::ScalarType ArgDtype(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return ParseDtype(info.Env(), ArgString(info, i, name), name);
}
c10::optional<at::ScalarType> ArgOptDtype(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info, i)) return c10::nullopt;
  return ArgDtype(info, i, name);
}

at::Device ArgDevice(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info, i)) return at::Device(at::kCPU);
  std::string s = ArgString(info, i, name);
  if (s == "cpu") return at::Device(at::kCPU);
  if (s == "cuda") return at::Device(at::kCUDA);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9 &&
      s.find_first_not_of("0123456789", 5) == std::string::npos) {
    return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(s.substr(5))));
  }
  ThrowType(info.Env(), std::string("Expected 'cpu', 'cuda' or 'cuda:N' for ") + name + " but received '" + s + "'");
}

std::string DeviceName(const at::Device& d) { return d.str(); }

// PyTorch's names: contiguous_format, channels_last (4-D: N, H, W, C in memory),
// channels_last_3d (5-D), preserve_format.
at::MemoryFormat ArgMemoryFormat(const Napi::CallbackInfo& info, size_t i, const char* name, at::MemoryFormat dflt) {
  if (IsNullish(info, i)) return dflt;
  const std::string s = ArgString(info, i, name);
  if (s == "contiguous_format") return at::MemoryFormat::Contiguous;
  if (s == "channels_last") return at::MemoryFormat::ChannelsLast;
  if (s == "channels_last_3d") return at::MemoryFormat::ChannelsLast3d;
  if (s == "preserve_format") return at::MemoryFormat::Preserve;
  ThrowType(info.Env(), std::string("Expected 'contiguous_format', 'channels_last', 'channels_last_3d' or 'preserve_format' for ") + name +
                            " but received '" + s + "'");
}

c10::optional<at::Generator> ArgOptGenerator(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info, i)) return c10::nullopt;
  Napi::Value v = info[i];
  if (!GeneratorWrap::Is(v)) ThrowType(info.Env(), Expected("a Generator", name, v));
  return GeneratorWrap::Unwrap(v.As<Napi::Object>())->gen;
}

int64_t ArgReduction(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (IsNullish(info, i)) return at::Reduction::Mean;
  std::string s = ArgString(info, i, name);
  if (s == "mean") return at::Reduction::Mean;
  if (s == "sum") return at::Reduction::Sum;
  if (s == "none") return at::Reduction::None;
  ThrowType(info.Env(), std::string("Expected 'mean', 'sum' or 'none' for ") + name + " but received '" + s + "'");
}

at::TensorOptions Options(const Napi::CallbackInfo& info, size_t dtypeIdx, size_t deviceIdx, at::ScalarType dflt) {
  auto dt = ArgOptDtype(info, dtypeIdx, "dtype");
  return at::TensorOptions().dtype(dt.value_or(dflt)).device(ArgDevice(info, deviceIdx, "device"));
}

Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  auto arr = Napi::Array::New(env, ts.size());
  for (size_t k = 0; k < ts.size(); k++) arr.Set(static_cast<uint32_t>(k), Wrap(env, ts[k]));
  return arr;
}

Napi::Array IntArray(Napi::Env env, at::IntArrayRef v) {
  auto arr = Napi::Array::New(env, v.size());
  for (size_t k = 0; k < v.size(); k++) arr.Set(static_cast<uint32_t>(k), Napi::Number::New(env, static_cast<double>(v[k])));
  return arr;
}

// ---- data in and out ------------------------------------------------------

static at::ScalarType TypedArrayDtype(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_bigint64_array: return at::kLong;
    case napi_int32_array: return at::kInt;
    case napi_uint8_array:
    case napi_uint8_clamped_array: return at::kByte;
    case napi_int16_array: return at::kShort;
    case napi_int8_array: return at::kChar;
    default: return at::ScalarType::Undefined;
  }
}

// fromBuffer(typedArray, shape, dtype?): one copy, straight from JS memory into a
// fresh CPU tensor. Copying (instead of aliasing with from_blob) means the tensor
// never depends on the lifetime of JS memory, which may be freed by GC on the
// main thread while autograd or a worker still reads the tensor.
static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) ThrowType(env, Expected("a TypedArray or Buffer", "data", info[0]));
  auto ta = info[0].As<Napi::TypedArray>();
  at::ScalarType src = TypedArrayDtype(ta.TypedArrayType());
  if (!IsNullish(info, 2)) {
    at::ScalarType want = ArgDtype(info, 2, "dtype");
    // Raw bits, as toTypedArray gives them: float16/bfloat16 in a Uint16Array, and
    // complex as interleaved (re, im) pairs of float32 / float64.
    const auto tt = ta.TypedArrayType();
    if (tt == napi_uint16_array && (want == at::kHalf || want == at::kBFloat16)) src = want;
    if (tt == napi_float32_array && want == at::kComplexFloat) src = want;
    if (tt == napi_float64_array && want == at::kComplexDouble) src = want;
  }
  if (src == at::ScalarType::Undefined) ThrowType(env, "Unsupported TypedArray type for data (use Float32Array, Float64Array, BigInt64Array, Int32Array, Int16Array, Int8Array or Uint8Array; Uint16Array with dtype float16 or bfloat16 for their raw bits)");
  std::vector<int64_t> shape = ArgShape(info, 1, "shape");
  size_t elem = at::elementSize(src);
  // The element count, without overflow: more than the data holds is an error anyway.
  const int64_t have = static_cast<int64_t>(ta.ByteLength() / elem);
  int64_t n = 1;
  bool zero = false;
  for (int64_t s : shape) zero = zero || s == 0;
  for (size_t k = 0; k < shape.size() && !zero; k++) {
    if (n > have / std::max<int64_t>(shape[k], 1) + 1) {
      ThrowType(env, "Expected data of more elements for shape " + ListString(shape) + " but received " + std::to_string(have) +
                         " elements");
    }
    n *= shape[k];
  }
  if (zero) n = 0;
  if (static_cast<int64_t>(ta.ByteLength() / elem) != n) {
    std::ostringstream os;
    os << "Expected data of " << n << " elements for shape " << at::IntArrayRef(shape) << " but received "
       << ta.ByteLength() / elem << " elements";
    ThrowType(env, os.str());
  }
  auto dst = ArgOptDtype(info, 2, "dtype");
  // uint8 data tagged as bool is a reinterpretation, not a conversion.
  at::ScalarType store = (dst && *dst == at::kBool && src == at::kByte) ? at::kBool : src;
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(store));
  if (n > 0) {
    const uint8_t* base = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    std::memcpy(t.data_ptr(), base, n * elem);
  }
  if (dst && *dst != store) t = t.to(*dst);
  return Wrap(env, t);
}

// toTypedArray(t): one copy into a new ArrayBuffer, typed by dtype.
static Napi::Value ToTypedArray(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor t = ArgTensor(info, 0, "tensor");
  if (!t.device().is_cpu()) t = t.cpu();
  t = t.contiguous();
  at::ScalarType st = t.scalar_type();
  size_t n = static_cast<size_t>(t.numel());
  size_t bytes = n * t.element_size();
  auto ab = Napi::ArrayBuffer::New(env, bytes);
  if (bytes) std::memcpy(ab.Data(), t.data_ptr(), bytes);
  switch (st) {
    case at::kFloat: return Napi::Float32Array::New(env, n, ab, 0);
    case at::kDouble: return Napi::Float64Array::New(env, n, ab, 0);
    case at::kLong: return Napi::TypedArrayOf<int64_t>::New(env, n, ab, 0, napi_bigint64_array);
    case at::kInt: return Napi::Int32Array::New(env, n, ab, 0);
    case at::kByte:
    case at::kBool: return Napi::Uint8Array::New(env, n, ab, 0);
    case at::kShort: return Napi::Int16Array::New(env, n, ab, 0);
    case at::kChar: return Napi::Int8Array::New(env, n, ab, 0);
    // JS has no 16-bit float array: the raw bits, as numpy's float16 .view(uint16).
    case at::kHalf:
    case at::kBFloat16: return Napi::Uint16Array::New(env, n, ab, 0);
    // Interleaved [re, im] pairs, as torch.view_as_real lays them out.
    case at::kComplexFloat: return Napi::Float32Array::New(env, 2 * n, ab, 0);
    case at::kComplexDouble: return Napi::Float64Array::New(env, 2 * n, ab, 0);
    default: ThrowType(env, std::string("toTypedArray does not support dtype ") + DtypeName(st) + "; convert with to('float32') first");
  }
}

// torch.set_default_dtype / get_default_dtype: the dtype factories use when none is
// given (process-wide, as in PyTorch). Floating types only, as PyTorch checks.
static Napi::Value SetDefaultDtype(const Napi::CallbackInfo& info) {
  at::ScalarType t = ArgDtype(info, 0, "dtype");
  if (!at::isFloatingType(t)) {
    ThrowType(info.Env(), std::string("Expected a floating-point dtype (float32, float64, float16 or bfloat16) for dtype but received '") +
                              DtypeName(t) + "': only floating-point types are supported as the default type");
  }
  c10::set_default_dtype(caffe2::TypeMeta::fromScalarType(t));
  return info.Env().Undefined();
}
static Napi::Value GetDefaultDtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), DtypeName(c10::get_default_dtype_as_scalartype()));
}

static Napi::Value Item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  at::Tensor& t = ArgTensor(info, 0, "tensor");
  if (t.numel() != 1) {
    ThrowTorch(env, "a Tensor with " + std::to_string(t.numel()) + " elements cannot be converted to a number");
  }
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
  if (s.isComplex()) {
    auto c = s.toComplexDouble();
    auto pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, c.real()));
    pair.Set(1u, Napi::Number::New(env, c.imag()));
    return pair;
  }
  if (s.isIntegral(false)) {
    int64_t v = s.toLong();
    if (ArgBool(info, 1, "bigint", false)) return Napi::BigInt::New(env, v);
    return Napi::Number::New(env, static_cast<double>(v));
  }
  return Napi::Number::New(env, s.toDouble());
}

static Napi::Value Shape(const Napi::CallbackInfo& info) { return IntArray(info.Env(), ArgTensor(info, 0, "tensor").sizes()); }
static Napi::Value Strides(const Napi::CallbackInfo& info) { return IntArray(info.Env(), ArgTensor(info, 0, "tensor").strides()); }
static Napi::Value Dtype(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), DtypeName(ArgTensor(info, 0, "tensor").scalar_type())); }
static Napi::Value Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), DeviceName(ArgTensor(info, 0, "tensor").device())); }
// isContiguous(t, memoryFormat?)
static Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  const at::Tensor& t = ArgTensor(info, 0, "tensor");
  const auto format = ArgMemoryFormat(info, 1, "memoryFormat", at::MemoryFormat::Contiguous);
  if (format == at::MemoryFormat::Preserve) ThrowType(info.Env(), "isContiguous: memoryFormat 'preserve_format' is not a layout");
  return Napi::Boolean::New(info.Env(), t.is_contiguous(format));
}
static Napi::Value Numel(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(ArgTensor(info, 0, "tensor").numel())); }

static Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("tensors", Napi::Number::New(env, static_cast<double>(gLiveTensors.load())));
  o.Set("bytes", Napi::Number::New(env, static_cast<double>(gLiveBytes.load())));
  o.Set("created", Napi::Number::New(env, static_cast<double>(gCreated.load())));
  o.Set("disposed", Napi::Number::New(env, static_cast<double>(gDisposed.load())));
  o.Set("collected", Napi::Number::New(env, static_cast<double>(gCollected.load())));
  return o;
}

static Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) ThrowType(info.Env(), Expected("a class", "errorClass", info[0]));
  Data(info.Env()).torchError = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// setReturnErrors(BoxClass) -> the class in effect: failed calls return `new BoxClass(error)`
// (see AddonData::errorBox). The first class registered in an environment stays: every
// copy of lib/native.ts loaded there (jest loads lib/ and dist/ side by side) must
// recognise the same boxes.
static Napi::Value SetReturnErrors(const Napi::CallbackInfo& info) {
  AddonData& d = Data(info.Env());
  if (!d.errorBox.IsEmpty()) return d.errorBox.Value();
  if (!info[0].IsFunction()) ThrowType(info.Env(), Expected("a class", "errorBox", info[0]));
  d.errorBox = Napi::Persistent(info[0].As<Napi::Function>());
  return info[0];
}

// dispose(handle): frees the tensor now; idempotent.
static Napi::Value Dispose(const Napi::CallbackInfo& info) {
  if (!TensorWrap::Is(info[0])) ThrowType(info.Env(), Expected("a Tensor", "tensor", info[0]));
  TensorWrap::Release(info.Env(), TensorWrap::Box(info[0]));
  return info.Env().Undefined();
}
void RegisterTensor(Napi::Env env, Napi::Object exports) {
  Export<Dispose>(env, exports, "dispose");
  Export<FromBuffer>(env, exports, "fromBuffer");
  Export<ToTypedArray>(env, exports, "toTypedArray");
  Export<Item>(env, exports, "item");
  Export<SetDefaultDtype>(env, exports, "setDefaultDtype");
  Export<GetDefaultDtype>(env, exports, "getDefaultDtype");
  Export<Shape>(env, exports, "shape");
  Export<Strides>(env, exports, "strides");
  Export<Dtype>(env, exports, "dtype");
  Export<Device>(env, exports, "device");
  Export<IsContiguous>(env, exports, "isContiguous");
  Export<Numel>(env, exports, "numel");
  Export<Memory>(env, exports, "memory");
  Export<SetErrorClass>(env, exports, "setErrorClass");
  Export<SetReturnErrors>(env, exports, "setReturnErrors");
}

}  // namespace tn
