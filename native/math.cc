// Pointwise math, reductions, comparisons and the in-place updates optimizers use.
// Binary ops take a tensor or a scalar for `other`, like PyTorch.
#include "common.h"

namespace tn {

#define TN_UNARY(NAME, EXPR)                                  \
  static Napi::Value NAME(const Napi::CallbackInfo& info) {   \
    at::Tensor& a = ArgTensor(info, 0, "input");              \
    return Wrap(info.Env(), EXPR);                            \
  }

TN_UNARY(Neg, a.neg())
TN_UNARY(Sqrt, a.sqrt())
TN_UNARY(Rsqrt, a.rsqrt())
TN_UNARY(Exp, a.exp())
TN_UNARY(Log, a.log())
TN_UNARY(Abs, a.abs())
TN_UNARY(Sign, a.sign())
TN_UNARY(Sigmoid, a.sigmoid())
TN_UNARY(Tanh, a.tanh())
TN_UNARY(Square, a.square())
TN_UNARY(Floor, a.floor())
TN_UNARY(Ceil, a.ceil())
TN_UNARY(Round, a.round())
TN_UNARY(LogicalNot, a.logical_not())
TN_UNARY(Isnan, a.isnan())
TN_UNARY(Clone, a.clone())
TN_UNARY(Detach, a.detach())
// contiguous(a, memoryFormat?)
static Napi::Value Contiguous(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  const auto format = ArgMemoryFormat(info, 1, "memoryFormat", at::MemoryFormat::Contiguous);
  if (format == at::MemoryFormat::Preserve) ThrowType(info.Env(), "contiguous: memoryFormat 'preserve_format' is not a layout");
  return Wrap(info.Env(), a.contiguous(format));
}

// add(a, other, alpha?) / sub(a, other, alpha?)
static Napi::Value Add(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  at::Scalar alpha = IsNullish(info, 2) ? at::Scalar(1) : ArgScalar(info, 2, "alpha");
  if (IsScalar(info[1])) return Wrap(info.Env(), a.add(ArgScalar(info, 1, "other"), alpha));
  return Wrap(info.Env(), a.add(ArgTensor(info, 1, "other"), alpha));
}
static Napi::Value Sub(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  at::Scalar alpha = IsNullish(info, 2) ? at::Scalar(1) : ArgScalar(info, 2, "alpha");
  if (IsScalar(info[1])) return Wrap(info.Env(), a.sub(ArgScalar(info, 1, "other"), alpha));
  return Wrap(info.Env(), a.sub(ArgTensor(info, 1, "other"), alpha));
}

#define TN_BINARY(NAME, METHOD)                                                            \
  static Napi::Value NAME(const Napi::CallbackInfo& info) {                                \
    at::Tensor& a = ArgTensor(info, 0, "input");                                           \
    if (IsScalar(info[1])) return Wrap(info.Env(), a.METHOD(ArgScalar(info, 1, "other"))); \
    return Wrap(info.Env(), a.METHOD(ArgTensor(info, 1, "other")));                        \
  }

TN_BINARY(Mul, mul)
TN_BINARY(Div, div)
TN_BINARY(Pow, pow)
TN_BINARY(Remainder, remainder)
TN_BINARY(Eq, eq)
TN_BINARY(Ne, ne)
TN_BINARY(Gt, gt)
TN_BINARY(Lt, lt)
TN_BINARY(Ge, ge)
TN_BINARY(Le, le)
static Napi::Value Maximum(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::maximum(ArgTensor(info, 0, "input"), ArgTensor(info, 1, "other")));
}

static Napi::Value Matmul(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), ArgTensor(info, 0, "input").matmul(ArgTensor(info, 1, "other")));
}

static Napi::Value Where(const Napi::CallbackInfo& info) {
  at::Tensor& cond = ArgTensor(info, 0, "condition");
  at::Tensor& a = ArgTensor(info, 1, "input");
  at::Tensor& b = ArgTensor(info, 2, "other");
  return Wrap(info.Env(), at::where(cond, a, b));
}

// clamp(a, min?, max?)
static Napi::Value Clamp(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  c10::optional<at::Scalar> lo, hi;
  if (!IsNullish(info, 1)) lo = ArgScalar(info, 1, "min");
  if (!IsNullish(info, 2)) hi = ArgScalar(info, 2, "max");
  if (!lo && !hi) ThrowType(info.Env(), "clamp: at least one of min or max must be given");
  return Wrap(info.Env(), at::clamp(a, lo, hi));
}

// ---- reductions: (input, dim?, keepdim?, dtype?) ---------------------------

// A dim or a list of dims (libtorch checks each against the input's rank).
static std::vector<int64_t> ArgDims(const Napi::CallbackInfo& info, size_t i) {
  return ArgIntList(info, i, "dim", 0, kMaxDims, -kMaxDims, kMaxDims - 1);
}

static Napi::Value Sum(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  auto dt = ArgOptDtype(info, 3, "dtype");
  if (IsNullish(info, 1)) return Wrap(info.Env(), a.sum(dt));
  return Wrap(info.Env(), a.sum(ArgDims(info, 1), ArgBool(info, 2, "keepdim", false), dt));
}
static Napi::Value Mean(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  auto dt = ArgOptDtype(info, 3, "dtype");
  if (IsNullish(info, 1)) return Wrap(info.Env(), a.mean(dt));
  return Wrap(info.Env(), a.mean(ArgDims(info, 1), ArgBool(info, 2, "keepdim", false), dt));
}
static Napi::Value Prod(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  if (IsNullish(info, 1)) return Wrap(info.Env(), a.prod());
  return Wrap(info.Env(), a.prod(ArgInt(info, 1, "dim"), ArgBool(info, 2, "keepdim", false)));
}
static Napi::Value Var(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  bool unbiased = ArgBool(info, 3, "unbiased", true);
  if (IsNullish(info, 1)) return Wrap(info.Env(), a.var(unbiased));
  return Wrap(info.Env(), a.var(at::IntArrayRef(ArgDims(info, 1)), unbiased, ArgBool(info, 2, "keepdim", false)));
}
static Napi::Value Norm(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  at::Scalar p = IsNullish(info, 1) ? at::Scalar(2.0) : ArgScalar(info, 1, "p");
  return Wrap(info.Env(), a.norm(p));
}

// max/min(input) -> tensor; max/min(input, dim, keepdim) -> [values, indices]
static Napi::Value Max(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  if (IsNullish(info, 1)) return Wrap(info.Env(), a.max());
  auto r = a.max(ArgInt(info, 1, "dim"), ArgBool(info, 2, "keepdim", false));
  return WrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value Min(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  if (IsNullish(info, 1)) return Wrap(info.Env(), a.min());
  auto r = a.min(ArgInt(info, 1, "dim"), ArgBool(info, 2, "keepdim", false));
  return WrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}
static Napi::Value Argmax(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  return Wrap(info.Env(), a.argmax(ArgOptInt(info, 1, "dim"), ArgBool(info, 2, "keepdim", false)));
}
static Napi::Value Argmin(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  return Wrap(info.Env(), a.argmin(ArgOptInt(info, 1, "dim"), ArgBool(info, 2, "keepdim", false)));
}
static Napi::Value AllClose(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "input");
  at::Tensor& b = ArgTensor(info, 1, "other");
  return Napi::Boolean::New(info.Env(), a.allclose(b, ArgDouble(info, 2, "rtol", 1e-5), ArgDouble(info, 3, "atol", 1e-8)));
}
static Napi::Value Equal(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), ArgTensor(info, 0, "input").equal(ArgTensor(info, 1, "other")));
}

// ---- in-place (return the same JS object: PyTorch's `x.add_(...) is x`) ----

static Napi::Value Add_(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "self");
  at::Scalar alpha = IsNullish(info, 2) ? at::Scalar(1) : ArgScalar(info, 2, "alpha");
  if (IsScalar(info[1])) a.add_(ArgScalar(info, 1, "other"), alpha);
  else a.add_(ArgTensor(info, 1, "other"), alpha);
  return info[0];
}
static Napi::Value Sub_(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "self");
  at::Scalar alpha = IsNullish(info, 2) ? at::Scalar(1) : ArgScalar(info, 2, "alpha");
  if (IsScalar(info[1])) a.sub_(ArgScalar(info, 1, "other"), alpha);
  else a.sub_(ArgTensor(info, 1, "other"), alpha);
  return info[0];
}

#define TN_INPLACE_BINARY(NAME, METHOD)                                 \
  static Napi::Value NAME(const Napi::CallbackInfo& info) {             \
    at::Tensor& a = ArgTensor(info, 0, "self");                         \
    if (IsScalar(info[1])) a.METHOD(ArgScalar(info, 1, "other"));       \
    else a.METHOD(ArgTensor(info, 1, "other"));                         \
    return info[0];                                                     \
  }

TN_INPLACE_BINARY(Mul_, mul_)
TN_INPLACE_BINARY(Div_, div_)
TN_INPLACE_BINARY(Pow_, pow_)
TN_INPLACE_BINARY(Fill_, fill_)

#define TN_INPLACE_UNARY(NAME, EXPR)                          \
  static Napi::Value NAME(const Napi::CallbackInfo& info) {   \
    at::Tensor& a = ArgTensor(info, 0, "self");               \
    EXPR;                                                     \
    return info[0];                                           \
  }

TN_INPLACE_UNARY(Zero_, a.zero_())
TN_INPLACE_UNARY(Sqrt_, a.sqrt_())
TN_INPLACE_UNARY(Neg_, a.neg_())
TN_INPLACE_UNARY(Relu_, a.relu_())

// addcmul_(self, t1, t2, value) / addcdiv_(self, t1, t2, value)
static Napi::Value Addcmul_(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "self");
  a.addcmul_(ArgTensor(info, 1, "tensor1"), ArgTensor(info, 2, "tensor2"),
             IsNullish(info, 3) ? at::Scalar(1) : ArgScalar(info, 3, "value"));
  return info[0];
}
static Napi::Value Addcdiv_(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "self");
  a.addcdiv_(ArgTensor(info, 1, "tensor1"), ArgTensor(info, 2, "tensor2"),
             IsNullish(info, 3) ? at::Scalar(1) : ArgScalar(info, 3, "value"));
  return info[0];
}
static Napi::Value Lerp_(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "self");
  a.lerp_(ArgTensor(info, 1, "end"), ArgScalar(info, 2, "weight"));
  return info[0];
}
static Napi::Value Copy_(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "self");
  a.copy_(ArgTensor(info, 1, "src"));
  return info[0];
}
static Napi::Value Clamp_(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "self");
  c10::optional<at::Scalar> lo, hi;
  if (!IsNullish(info, 1)) lo = ArgScalar(info, 1, "min");
  if (!IsNullish(info, 2)) hi = ArgScalar(info, 2, "max");
  if (!lo && !hi) ThrowType(info.Env(), "clamp_: at least one of min or max must be given");
  at::clamp_(a, lo, hi);
  return info[0];
}
// maximum_(self, other): Adam's amsgrad keeps max(exp_avg_sq) in place.
static Napi::Value Maximum_(const Napi::CallbackInfo& info) {
  at::Tensor& a = ArgTensor(info, 0, "self");
  at::maximum_out(a, a, ArgTensor(info, 1, "other"));
  return info[0];
}

void RegisterMath(Napi::Env env, Napi::Object exports) {
  Export<Neg>(env, exports, "neg");
  Export<Sqrt>(env, exports, "sqrt");
  Export<Rsqrt>(env, exports, "rsqrt");
  Export<Exp>(env, exports, "exp");
  Export<Log>(env, exports, "log");
  Export<Abs>(env, exports, "abs");
  Export<Sign>(env, exports, "sign");
  Export<Sigmoid>(env, exports, "sigmoid");
  Export<Tanh>(env, exports, "tanh");
  Export<Square>(env, exports, "square");
  Export<Floor>(env, exports, "floor");
  Export<Ceil>(env, exports, "ceil");
  Export<Round>(env, exports, "round");
  Export<LogicalNot>(env, exports, "logicalNot");
  Export<Isnan>(env, exports, "isnan");
  Export<Clone>(env, exports, "clone");
  Export<Detach>(env, exports, "detach");
  Export<Contiguous>(env, exports, "contiguous");
  Export<Add>(env, exports, "add");
  Export<Sub>(env, exports, "sub");
  Export<Mul>(env, exports, "mul");
  Export<Div>(env, exports, "div");
  Export<Pow>(env, exports, "pow");
  Export<Remainder>(env, exports, "remainder");
  Export<Eq>(env, exports, "eq");
  Export<Ne>(env, exports, "ne");
  Export<Gt>(env, exports, "gt");
  Export<Lt>(env, exports, "lt");
  Export<Ge>(env, exports, "ge");
  Export<Le>(env, exports, "le");
  Export<Maximum>(env, exports, "maximum");
  Export<Matmul>(env, exports, "matmul");
  Export<Where>(env, exports, "where");
  Export<Clamp>(env, exports, "clamp");
  Export<Sum>(env, exports, "sum");
  Export<Mean>(env, exports, "mean");
  Export<Prod>(env, exports, "prod");
  Export<Var>(env, exports, "var");
  Export<Norm>(env, exports, "norm");
  Export<Max>(env, exports, "max");
  Export<Min>(env, exports, "min");
  Export<Argmax>(env, exports, "argmax");
  Export<Argmin>(env, exports, "argmin");
  Export<AllClose>(env, exports, "allclose");
  Export<Equal>(env, exports, "equal");
  Export<Add_>(env, exports, "add_");
  Export<Sub_>(env, exports, "sub_");
  Export<Mul_>(env, exports, "mul_");
  Export<Div_>(env, exports, "div_");
  Export<Pow_>(env, exports, "pow_");
  Export<Fill_>(env, exports, "fill_");
  Export<Zero_>(env, exports, "zero_");
  Export<Sqrt_>(env, exports, "sqrt_");
  Export<Neg_>(env, exports, "neg_");
  Export<Relu_>(env, exports, "relu_");
  Export<Addcmul_>(env, exports, "addcmul_");
  Export<Addcdiv_>(env, exports, "addcdiv_");
  Export<Lerp_>(env, exports, "lerp_");
  Export<Copy_>(env, exports, "copy_");
  Export<Clamp_>(env, exports, "clamp_");
  Export<Maximum_>(env, exports, "maximum_");
}

}  // namespace tn
