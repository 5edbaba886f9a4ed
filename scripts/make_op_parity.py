#!/usr/bin/python3
"""Op-by-op parity fixture for torchnode's generic op layer (torch.ops.*), from real PyTorch.

Usage (a python3 with the real PyTorch whose numbers you want, e.g. Debian's python3-torch):

    /usr/bin/python3 scripts/make_op_parity.py [OUTDIR]      (npm run fixtures:ops)

Writes OUTDIR/ops_parity.json, by default test/fixtures/<major.minor>/ (the set the tests
read for a libtorch of that version; test/ops-parity.test.ts replays it).

Each case calls one ATen operator through torch.ops.aten.<name> on small tensors built
from explicit values (no RNG), and records:

    {"id": "cumsum#0", "op": "aten::cumsum", "name": "cumsum", "method": false,
     "args": [ARG...], "kwargs": {"aten_name": ARG}, "inplace": false,
     "expected": OUT, "self_after": T (in-place forms: the mutated self),
     "tol": {"rtol": r, "atol": a},
     "grad": {"weights": [T...], "inputs": [argument index or kwarg name...], "grads": [T or null...]}}

    ARG: {"tensor": T} | {"dtype": "float64"} | {"str": "mean"} | number | bool | null | [ARG...]
    T:   {"dtype": "float32", "shape": [2, 3], "values": [... row-major; "nan", "inf", "-inf" as strings]}
    OUT: {"tensor": T} | {"list": [OUT...]} | {"scalar": v} | {"none": true}

The TS side converts keyword names to camelCase (lib/ops/schema.ts's camel()) and calls
torch.ops.<camel(name)>(...args, kwargs), or the Tensor method when "method" is true.
Gradient cases reduce every floating output o_i with a fixed weight W_i, sum_i (o_i * W_i).sum(),
call backward and record each floating input's grad.  A case whose op this PyTorch lacks,
or whose kernel refuses the inputs (e.g. a dtype without a CPU kernel in this version), is
left out of this version's file and listed under "skipped" with the reason.
"""
import json
import math
import os
import sys

import torch

A = torch.ops.aten

DTYPES = {
    torch.float32: 'float32', torch.float64: 'float64', torch.float16: 'float16', torch.bfloat16: 'bfloat16',
    torch.int64: 'int64', torch.int32: 'int32', torch.int16: 'int16', torch.int8: 'int8', torch.uint8: 'uint8',
    torch.bool: 'bool',
}
BY_NAME = {v: k for k, v in DTYPES.items()}
f32, f64, f16, bf16 = torch.float32, torch.float64, torch.float16, torch.bfloat16
i64, i32, i16, i8, u8, b8 = torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool
FLOATS = (f32, f64, f16, bf16)

# Default tolerances by result dtype (relative, absolute).
TOL = {'float32': (1e-6, 1e-6), 'float64': (1e-12, 1e-12), 'float16': (1e-3, 1e-3), 'bfloat16': (8e-3, 8e-3)}


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import _pkg_version  # noqa: E402  (the same Debian package query)


# ---- deterministic inputs --------------------------------------------------------------

def _n(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def seq(n, kind):
    if kind == 'any':  # multiples of 0.25 in [-2, 2]
        return [((i * 7 + 3) % 17 - 8) / 4 for i in range(n)]
    if kind == 'pos':  # (0, 2.25]
        return [((i * 7 + 3) % 17 + 1) / 8 for i in range(n)]
    if kind == 'unit':  # (-0.8, 0.8)
        return [((i * 7 + 3) % 17 - 8) / 10.5 for i in range(n)]
    if kind == 'prob':  # (0, 1)
        return [((i * 7 + 3) % 17 + 1) / 19 for i in range(n)]
    if kind == 'gt1':  # (1, 3.2]
        return [1 + ((i * 7 + 3) % 17 + 1) / 8 for i in range(n)]
    if kind == 'nz':  # nonzero, mixed sign
        return [(((i * 7 + 3) % 17) - 8.5) / 4 for i in range(n)]
    raise ValueError(kind)


def T(shape, dtype=f32, kind='any', values=None):
    """A tensor of `shape` from explicit values (or the deterministic sequence `kind`)."""
    n = _n(shape)
    if values is None:
        if dtype == b8:
            values = [((i * 7 + 3) % 3) == 0 for i in range(n)]
        elif dtype in FLOATS:
            values = seq(n, kind)
        else:
            lo, hi = (0, 9) if dtype == u8 or kind == 'pos' else (-6, 6)
            values = [lo + (i * 7 + 3) % (hi - lo + 1) for i in range(n)]
    return torch.tensor(values, dtype=dtype).reshape(shape)


def I(values, dtype=i64):
    return torch.tensor(values, dtype=dtype)


def M(n, dtype=f64):
    """A well-conditioned n x n matrix (diagonally dominant)."""
    v = seq(n * n, 'any')
    t = torch.tensor(v, dtype=dtype).reshape(n, n)
    return t + torch.eye(n, dtype=dtype) * (2 * n)


def SPD(n, dtype=f64):
    m = M(n, dtype)
    return m @ m.t() + torch.eye(n, dtype=dtype)


# ---- encoding ---------------------------------------------------------------------------

def enc_t(t):
    t = t.detach()
    if t.dtype not in DTYPES:
        raise TypeError(f'unsupported dtype {t.dtype}')
    if t.dtype == b8:
        vals = [bool(v) for v in t.flatten().tolist()]
    elif t.dtype in FLOATS:
        vals = []
        for v in t.double().flatten().tolist():
            if math.isnan(v):
                vals.append('nan')
            elif math.isinf(v):
                vals.append('inf' if v > 0 else '-inf')
            else:
                vals.append(v)
    else:
        vals = [int(v) for v in t.flatten().tolist()]
    return {'dtype': DTYPES[t.dtype], 'shape': list(t.shape), 'values': vals}


class S(str):
    """A string argument (reduction mode, padding mode, approximate=...)."""


def enc_arg(a):
    if isinstance(a, torch.Tensor):
        return {'tensor': enc_t(a)}
    if isinstance(a, torch.dtype):
        return {'dtype': DTYPES[a]}
    if isinstance(a, str):
        return {'str': str(a)}
    if isinstance(a, torch.memory_format):
        return {'str': str(a).replace('torch.', '')}
    if isinstance(a, torch.layout):
        return {'str': str(a).replace('torch.', '')}
    if isinstance(a, torch.device):
        return {'str': str(a)}
    if a is None or isinstance(a, bool) or isinstance(a, int):
        return a
    if isinstance(a, float):
        if a.is_integer():
            # JS cannot tell 2.0 from 2: an integral float would reach a Scalar as an int.
            raise ValueError(f'integral float {a}: write it as an int')
        return a
    if isinstance(a, (list, tuple)):
        return [enc_arg(e) for e in a]
    raise TypeError(f'cannot encode argument {a!r}')


def enc_out(o):
    if isinstance(o, torch.Tensor):
        return {'tensor': enc_t(o)}
    if isinstance(o, (list, tuple)):
        return {'list': [enc_out(e) for e in o]}
    if o is None:
        return {'none': True}
    if isinstance(o, bool) or isinstance(o, int):
        return {'scalar': o}
    if isinstance(o, float):
        return {'scalar': o if math.isfinite(o) else repr(o)}
    raise TypeError(f'cannot encode output {o!r}')


def out_dtypes(o, acc):
    if isinstance(o, torch.Tensor):
        acc.append(o.dtype)
    elif isinstance(o, (list, tuple)):
        for e in o:
            out_dtypes(e, acc)
    return acc


def float_outputs(o, acc):
    if isinstance(o, torch.Tensor):
        if o.dtype in FLOATS and o.requires_grad:
            acc.append(o)
    elif isinstance(o, (list, tuple)):
        for e in o:
            float_outputs(e, acc)
    return acc


def clone_arg(a, grad=False):
    if isinstance(a, torch.Tensor):
        c = a.detach().clone()
        if grad and c.dtype in FLOATS:
            c.requires_grad_(True)
        return c
    if isinstance(a, (list, tuple)):
        return type(a)(clone_arg(e, grad) for e in a)
    return a


def weights_for(t):
    n = t.numel()
    vals = [((k * 5 + 2) % 7 - 3) / 4 + 0.125 for k in range(n)]
    return torch.tensor(vals, dtype=t.dtype).reshape(t.shape)


# ---- the cases ---------------------------------------------------------------------------

CASES = []
SKIPPED = []
COUNTS = {}


def case(name, *args, method=False, inplace=False, grad=False, tol=None, known=None, spread=False, **kwargs):
    """One call of aten::<name>(*args, **kwargs) (ATen argument names).

    known: why torchnode cannot replay this case yet (it is listed under "skipped", not run).
    spread: the JS call spreads the last positional list (Python's varargs form, `x.permute(2, 0, 1)`)."""
    k = COUNTS.get(name, 0)
    COUNTS[name] = k + 1
    cid = f'{name}#{k}'
    if known:
        SKIPPED.append({'id': cid, 'reason': f'known unsupported in torchnode: {known}'})
        return
    try:
        fn = getattr(A, name)
    except (AttributeError, RuntimeError) as e:
        SKIPPED.append({'id': cid, 'reason': f'not in torch {torch.__version__}'})
        return
    try:
        a = [clone_arg(x) for x in args]
        kw = {key: clone_arg(v) for key, v in kwargs.items()}
        enc_args = [enc_arg(x) for x in a]
        enc_kw = {key: enc_arg(v) for key, v in kw.items()}
        out = fn(*a, **kw)
        c = {'id': cid, 'op': f'aten::{name}', 'name': name, 'method': method, 'args': enc_args, 'kwargs': enc_kw,
             'inplace': inplace, 'spread': spread, 'expected': enc_out(out)}
        if inplace:
            c['self_after'] = enc_t(a[0])
        dts = out_dtypes(out, [])
        if inplace:
            dts.append(a[0].dtype)
        if tol is None:
            r, at = 0.0, 0.0
            for d in dts:
                if d in FLOATS:
                    rr, aa = TOL[DTYPES[d]]
                    r, at = max(r, rr), max(at, aa)
            tol = (r, at)
        c['tol'] = {'rtol': tol[0], 'atol': tol[1]}
        if grad:
            try:
                ga = [clone_arg(x, True) for x in args]
                gkw = {key: clone_arg(v, True) for key, v in kwargs.items()}
                gout = fn(*ga, **gkw)
            except RuntimeError as e:
                if 'not differentiable' not in str(e):
                    raise
                # Only the first tensor (the input) takes a gradient (running stats, targets, weights do not).
                first = next(i for i, x in enumerate(args) if isinstance(x, torch.Tensor))
                ga = [clone_arg(x, i == first) for i, x in enumerate(args)]
                gkw = {key: clone_arg(v) for key, v in kwargs.items()}
                gout = fn(*ga, **gkw)
            outs = float_outputs(gout, [])
            if not outs:
                raise RuntimeError('no differentiable output')
            ws = [weights_for(o) for o in outs]
            loss = sum((o * w).sum() for o, w in zip(outs, ws))
            loss.backward()
            inputs, grads = [], []
            for i, x in enumerate(ga):
                if isinstance(x, torch.Tensor) and x.requires_grad:
                    inputs.append(i)
                    grads.append(None if x.grad is None else enc_t(x.grad))
                elif isinstance(x, (list, tuple)):
                    # a Tensor[] argument: element j of argument i is "i.j"
                    for j, e in enumerate(x):
                        if isinstance(e, torch.Tensor) and e.requires_grad:
                            inputs.append(f'{i}.{j}')
                            grads.append(None if e.grad is None else enc_t(e.grad))
            for key, x in gkw.items():
                if isinstance(x, torch.Tensor) and x.requires_grad:
                    inputs.append(key)
                    grads.append(None if x.grad is None else enc_t(x.grad))
            gt = grad if isinstance(grad, tuple) else None
            if gt is None:
                r, at = c['tol']['rtol'], c['tol']['atol']
                gt = (max(r, 1e-5) if r < 1e-3 else r * 4, max(at, 1e-5) if at < 1e-3 else at * 4)
            c['grad'] = {'weights': [enc_t(w) for w in ws], 'inputs': inputs, 'grads': grads,
                         'tol': {'rtol': gt[0], 'atol': gt[1]}}
        json.dumps(c, allow_nan=False)
    except Exception as e:  # a kernel this version lacks for these inputs
        SKIPPED.append({'id': cid, 'reason': f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'})
        return
    CASES.append(c)


def build():
    x = T([2, 3])
    x4 = T([3, 4])
    pos = T([2, 3], kind='pos')
    unit = T([2, 3], kind='unit')
    # --- unary float math: float32 with gradients, plus other float dtypes
    unary = [
        ('abs', 'any', True), ('neg', 'any', True), ('exp', 'any', True), ('exp2', 'any', True), ('expm1', 'any', True),
        ('log', 'pos', True), ('log2', 'pos', True), ('log10', 'pos', True), ('log1p', 'pos', True),
        ('sqrt', 'pos', True), ('rsqrt', 'pos', True), ('sin', 'any', True), ('cos', 'any', True), ('tan', 'unit', True),
        ('asin', 'unit', True), ('acos', 'unit', True), ('atan', 'any', True), ('sinh', 'any', True), ('cosh', 'any', True),
        ('tanh', 'any', True), ('asinh', 'any', True), ('acosh', 'gt1', True), ('atanh', 'unit', True),
        ('sigmoid', 'any', True), ('logit', 'prob', True), ('erf', 'any', True), ('erfc', 'any', True),
        ('erfinv', 'unit', True), ('lgamma', 'pos', True), ('digamma', 'pos', True), ('ceil', 'nz', False),
        ('floor', 'nz', False), ('round', 'nz', False), ('trunc', 'nz', False), ('frac', 'nz', True), ('sign', 'any', False),
        ('sgn', 'any', False), ('reciprocal', 'nz', True), ('square', 'any', True), ('relu', 'nz', True),
        ('silu', 'any', True), ('mish', 'any', True), ('hardswish', 'nz', True), ('hardsigmoid', 'nz', True),
        ('hardtanh', 'nz', True), ('elu', 'any', True), ('selu', 'any', True), ('celu', 'any', True),
        ('softplus', 'any', True), ('log_sigmoid', 'any', True), ('deg2rad', 'any', True),
        ('rad2deg', 'any', True), ('positive', 'any', False), ('nan_to_num', 'any', True), ('i0', 'any', True),
        ('sinc', 'nz', True), ('fix', 'nz', False), ('negative', 'any', True), ('absolute', 'nz', True),
        ('arcsin', 'unit', True), ('arccos', 'unit', True), ('arctan', 'any', True), ('arcsinh', 'any', True),
        ('arccosh', 'gt1', True), ('arctanh', 'unit', True), ('angle', 'nz', False), ('signbit', 'any', False),
        ('isnan', 'any', False), ('isinf', 'any', False), ('isfinite', 'any', False), ('isneginf', 'any', False),
        ('isposinf', 'any', False), ('isreal', 'any', False), ('logical_not', 'any', False), ('relu6', 'nz', True),
        ('special_expit', 'any', True), ('special_ndtr', 'any', True), ('special_ndtri', 'prob', False),
        ('special_log_ndtr', 'any', True), ('special_i0e', 'any', True), ('special_i1', 'any', True),
        ('special_i1e', 'any', True), ('special_entr', 'pos', True), ('special_sinc', 'nz', True),
        ('special_round', 'nz', False), ('special_logit', 'prob', True), ('special_expm1', 'any', True),
        ('special_exp2', 'any', True), ('special_log1p', 'pos', True), ('special_gammaln', 'pos', True),
        ('special_digamma', 'pos', True), ('special_psi', 'pos', True), ('special_erf', 'any', True),
        ('special_erfc', 'any', True), ('special_erfinv', 'unit', True), ('special_erfcx', 'any', False),
        ('special_i0', 'any', False), ('special_bessel_j0', 'any', False), ('special_bessel_j1', 'any', False),
        ('special_spherical_bessel_j0', 'any', False), ('special_airy_ai', 'any', False), ('erfc', 'nz', False),
    ]
    for name, kind, g in unary:
        case(name, T([2, 3], kind=kind), grad=g)
    for name, kind in [('exp', 'any'), ('log', 'pos'), ('sin', 'any'), ('tanh', 'any'), ('sigmoid', 'any'), ('sqrt', 'pos'),
                       ('abs', 'any'), ('neg', 'any'), ('relu', 'nz'), ('erf', 'any'), ('ceil', 'nz'), ('round', 'nz')]:
        case(name, T([5], f64, kind), grad=True)
        case(name, T([5], f16, kind))
        case(name, T([5], bf16, kind))
    # extra arguments
    case('softplus', x, 2, 10, grad=True)
    case('elu', x, 0.5, grad=True)
    case('leaky_relu', T([2, 3], kind='nz'), 0.125, grad=True)
    case('hardshrink', x, 0.75, grad=True)
    case('softshrink', x, 0.75, grad=True)
    case('threshold', x, 0.5, -1, grad=True)
    case('hardtanh', x, -0.5, 0.5)
    case('gelu', x, grad=True)
    case('gelu', x, approximate=S('tanh'), grad=True)
    case('logit', T([2, 3], kind='prob'), eps=0.125)
    case('nan_to_num', torch.tensor([float('nan'), float('inf'), -float('inf'), 1.5]), nan=0.5, posinf=3, neginf=-3)
    case('round', T([4], kind='unit') * 7, decimals=1)
    case('polygamma', 1, pos, grad=True)
    case('mvlgamma', T([2, 3], kind='gt1'), 2, grad=True)
    case('special_polygamma', 2, pos)
    case('special_multigammaln', T([2, 3], kind='gt1'), 2)
    case('rrelu', x, training=False)
    # --- binary math
    y = T([2, 3], kind='nz')
    yb = T([3], kind='pos')
    for name, g in [('add', True), ('sub', True), ('mul', True), ('div', True), ('true_divide', True), ('atan2', True),
                    ('hypot', True), ('maximum', True), ('minimum', True), ('fmax', True), ('fmin', True), ('copysign', True),
                    ('nextafter', False), ('logaddexp', True), ('logaddexp2', True), ('fmod', True), ('remainder', True),
                    ('floor_divide', False), ('subtract', True), ('multiply', True), ('divide', True), ('arctan2', True),
                    ('rsub', True), ('xlogy', True), ('special_xlog1py', True), ('special_xlogy', True),
                    ('eq', False), ('ne', False), ('lt', False), ('le', False), ('gt', False), ('ge', False),
                    ('greater', False), ('less', False), ('greater_equal', False), ('less_equal', False), ('not_equal', False),
                    ('logical_and', False), ('logical_or', False), ('logical_xor', False), ('heaviside', False),
                    ('float_power', False), ('igamma', False), ('igammac', False), ('special_zeta', False)]:
        a, b = (pos, T([2, 3], kind='pos') + 0.5) if name in ('xlogy', 'special_xlog1py', 'special_xlogy', 'igamma', 'igammac',
                                                                 'special_zeta', 'float_power') else (x, y)
        case(name, a, b, grad=g)
    case('add', x, yb, alpha=2, grad=True)
    case('add', x, 3)
    case('add', x, 0.5, method=True)
    case('sub', x, y, alpha=0.5)
    case('mul', x, 2.5, method=True)
    case('div', x, y, rounding_mode=S('floor'))
    case('div', x, y, rounding_mode=S('trunc'))
    case('pow', pos, y, grad=True)
    case('pow', x, 2, grad=True)
    case('pow', x, 3, method=True)
    case('pow', 2, x, grad=True)
    case('lerp', x, y, 0.25, grad=True)
    case('lerp', x, y, T([2, 3], kind='prob'), grad=True)
    case('clamp', x, -0.5, 0.75, grad=True)
    case('clamp', x, min=T([2, 3], kind='unit'), grad=True)
    case('clamp_min', x, 0.25)
    case('clamp_max', x, 0.25, grad=True)
    case('clip', x, -1, 1)
    case('addcmul', x, y, pos, value=0.5, grad=True)
    case('addcdiv', x, y, pos, value=0.5, grad=True)
    case('ldexp', x, I([1, 2, 3]))
    case('dist', x, y, grad=True)
    case('isclose', x, x + 1e-9, rtol=1e-5, atol=1e-8)
    case('allclose', x, x)
    case('equal', x, x)
    case('where', x > 0, x, y, grad=True)
    case('masked_fill', x, x > 0, 0.5, grad=True)
    case('dot', T([4]), T([4], kind='pos'), grad=True)
    case('vdot', T([4], f64), T([4], f64, 'pos'))
    case('inner', x, y, grad=True)
    case('outer', T([3]), T([2], kind='pos'), grad=True)
    case('ger', T([3]), T([2], kind='pos'))
    case('cross', T([2, 3]), y, dim=1, grad=True)
    case('linalg_cross', T([2, 3]), y, grad=True)
    case('kron', T([2, 2]), T([2, 2], kind='pos'), grad=True)
    case('tensordot', x4, T([4, 2], kind='pos'), [1], [0], grad=True)
    case('cdist', T([3, 2], f64), T([2, 2], f64, 'pos'), grad=True)
    case('cosine_similarity', x, y, 1, grad=True)
    case('pairwise_distance', x, y, grad=True)
    case('pdist', T([3, 2], f64), grad=True)
    case('trace', x4, grad=True)
    for d in (f16, bf16, f64):
        for name in ('add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'eq', 'lt'):
            case(name, T([2, 3], d), T([2, 3], d, 'nz'))
    # --- integer dtypes
    for d in (i64, i32, i16, i8, u8):
        a, b = T([2, 3], d), T([2, 3], d, 'pos') + 1
        for name in ('add', 'sub', 'mul', 'floor_divide', 'remainder', 'bitwise_and', 'bitwise_or', 'bitwise_xor',
                     'maximum', 'minimum', 'eq', 'gt', 'div'):
            case(name, a, b)
        case('bitwise_not', a)
        case('abs', a)
        case('neg', a)
        case('sum', a)
        case('cumsum', a, 0)
        case('sort', a, 1)
        case('amax', a, [1])
        case('mul', a, 3)
        case('clamp', a, 1, 4)
    a, b = T([2, 3], i64), T([2, 3], i64, 'pos') + 1
    case('gcd', a, b)
    case('lcm', a, b)
    case('bitwise_left_shift', b, I([1, 2, 3]))
    case('bitwise_right_shift', b * 8, I([1, 2, 3]))
    case('fmod', a, b)
    case('sign', a)
    case('prod', a, 1)
    case('argmax', a)
    case('bincount', I([0, 1, 1, 3, 2, 1]))
    case('bincount', I([0, 1, 1, 3]), T([4], f64, 'pos'))
    # --- bool
    p, q = T([2, 3], b8), T([2, 3], b8).logical_not()
    for name in ('logical_and', 'logical_or', 'logical_xor', 'bitwise_and', 'bitwise_or', 'bitwise_xor', 'eq', 'ne'):
        case(name, p, q)
    case('logical_not', p)
    case('bitwise_not', p)
    case('all', p)
    case('any', p)
    case('all', p, 1)
    case('any', p, 0, True)
    case('sum', p)
    # --- reductions
    r = T([3, 4])
    case('sum', r, grad=True)
    case('sum', r, [1], True, grad=True)
    case('sum', r, [0], dtype=f64)
    case('mean', r, grad=True)
    case('mean', r, [0, 1], keepdim=True, grad=True)
    case('prod', T([3, 4], kind='nz'), 1, grad=True)
    case('prod', T([2, 3], kind='nz'), grad=True)
    case('amax', r, [1], grad=True)
    case('amin', r, [0], True, grad=True)
    case('max', r, 1, grad=True)
    case('min', r, 0, True)
    case('max', r)
    case('min', r)
    case('argmax', r, 1)
    case('argmin', r, 0, True)
    case('std', r, [1], grad=True)
    case('var', r, [0], True, grad=True)
    case('std', r, [1], correction=0)
    case('var_mean', r, [1])
    case('std_mean', r, [0])
    case('norm', r, 2, grad=True)
    case('norm', r, 1, [1])
    case('logsumexp', r, [1], grad=True)
    case('all', r > 0, 1)
    case('any', r > 1, 0)
    case('median', r, grad=True)
    case('median', r, 1)
    case('nanmedian', torch.tensor([1.5, float('nan'), -0.5, 2.25]))
    case('nansum', torch.tensor([1.5, float('nan'), -0.5, 2.25]))
    case('nanmean', torch.tensor([1.5, float('nan'), -0.5, 2.25]))
    case('mode', I([[1, 2, 2, 3], [4, 4, 1, 1]]), 1)
    case('count_nonzero', r, [1])
    case('aminmax', r, dim=1)
    case('linalg_vector_norm', r, 3, grad=True)
    case('linalg_matrix_norm', r, S('fro'), grad=True)
    case('linalg_norm', r, grad=True)
    case('frobenius_norm', r, [0, 1])
    case('nuclear_norm', M(3), grad=True)
    case('renorm', r, 2, 0, 1.5, grad=True)
    case('quantile', r, 0.25, 1)
    case('nanquantile', r, 0.75)
    case('histc', r, 4, -2, 2)
    case('sum', r.to(f16), [1])
    case('mean', r.to(bf16))
    case('diff', r, 1, 1, grad=True)
    case('trapezoid', r, dim=1, grad=True)
    case('cumulative_trapezoid', r, dim=1)
    # --- cumulative
    case('cumsum', r, 1, grad=True)
    case('cumsum', r, 0, method=True)
    case('cumsum', I([1, 2, 3], i32), 0, dtype=i64)
    case('cumprod', T([3, 4], kind='nz'), 1, grad=True)
    case('cummax', r, 1, grad=True)
    case('cummin', r, 0)
    case('logcumsumexp', r, 1, grad=True)
    # --- shape ops
    s = T([2, 3, 4])
    case('view', s, [4, 6], grad=True)
    case('view', s, [-1, 4], method=True)
    case('reshape', s, [3, 8], grad=True)
    case('permute', s, [2, 0, 1], grad=True)
    case('permute', s, [1, 0, 2], method=True)
    case('transpose', s, 0, 2, grad=True)
    case('t', x, grad=True)
    case('flip', s, [0, 2], grad=True)
    case('flip', s, [1], method=True)
    case('fliplr', x)
    case('flipud', x)
    case('roll', s, [1], [2], grad=True)
    case('roll', x, 2)
    case('rot90', x4, 1, [0, 1])
    case('tril', x4, grad=True)
    case('tril', x4, -1)
    case('triu', x4, 1, grad=True)
    case('diag', x4)
    case('diag', T([3]), 1)
    case('diag_embed', x)
    case('diagonal', s, 0, 1, 2, grad=True)
    case('diagflat', T([3]))
    case('squeeze', T([2, 1, 3]))
    case('squeeze', T([2, 1, 3]), 1)
    case('unsqueeze', x, 1, grad=True)
    case('flatten', s, 1, grad=True)
    case('unflatten', T([2, 6]), 1, [2, 3])
    case('expand', T([3, 1]), [3, 4], grad=True)
    case('expand_as', T([3, 1]), x4)
    case('repeat', x, [2, 1], grad=True)
    case('repeat_interleave', x, 2, 0)
    case('repeat_interleave', I([1, 2, 3]))
    case('tile', x, [1, 2])
    case('narrow', x4, 1, 1, 2, grad=True)
    case('select', s, 1, 2, grad=True)
    case('slice', x4, 1, 0, 4, 2, grad=True)
    case('split', x4, 2, 1, grad=True)
    case('split_with_sizes', x4, [1, 3], 1)
    case('chunk', x4, 2, 0)
    case('tensor_split', x4, 3, 1)
    case('tensor_split', x4, [1, 2], 1)
    case('unbind', x, 1, grad=True)
    case('stack', [x, y], 1, grad=True)
    case('cat', [x, y], 0, grad=True)
    case('cat', [x, y], 1)
    case('concat', [x, y], 1)
    case('hstack', [x, y])
    case('vstack', [x, y])
    case('dstack', [x, y])
    case('column_stack', [T([3]), T([3], kind='pos')])
    case('row_stack', [x, y])
    case('movedim', s, 0, 2)
    case('moveaxis', s, [0, 1], [2, 0])
    case('swapaxes', s, 0, 1)
    case('swapdims', s, 1, 2)
    case('contiguous', s.transpose(0, 2))
    case('clone', x, grad=True)
    case('broadcast_to', T([3]), [2, 3])
    case('broadcast_tensors', [T([3]), T([2, 1])])
    case('atleast_1d', torch.tensor(1.5))
    case('atleast_2d', T([3]))
    case('atleast_3d', T([3]))
    case('meshgrid', [T([2]), T([3], kind='pos')], indexing=S('ij'))
    case('cartesian_prod', [T([2]), T([3], kind='pos')])
    case('combinations', T([4]), 2)
    case('block_diag', [T([2, 2]), T([1, 3], kind='pos')])
    case('view_as', s, T([6, 4]))
    case('reshape_as', s, T([4, 6]))
    case('ravel', x4)
    case('unfold', T([7]), 0, 3, 2, grad=True)
    case('as_strided', T([9]), [2, 2], [3, 1], 1)
    case('hsplit', x4, 2)
    case('vsplit', x4, [1])
    case('dsplit', s, 2)
    case('resolve_conj', x)
    case('resolve_neg', x)
    case('detach', x)
    case('alias', x)
    case('triu_indices', 3, 3)
    case('tril_indices', 3, 4, -1)
    case('adjoint', x)
    case('matrix_H', x)
    case('numpy_T', s)
    case('squeeze', T([1, 3, 1]), [0, 2]) if False else None
    # --- indexing
    idx = I([2, 0])
    case('index_select', x4, 1, idx, grad=True)
    case('index_select', x4, 0, I([1, 1, 0]), method=True)
    case('gather', x4, 1, I([[0, 1], [2, 3], [1, 1]]), grad=True)
    case('scatter', T([3, 4]), 1, I([[0], [2], [3]]), T([3, 1], kind='pos'), grad=True)
    case('scatter', T([3, 4]), 1, I([[0], [2], [3]]), 0.5)
    case('scatter', T([3, 4]), 0, I([[0, 1, 2, 0]]), T([1, 4], kind='pos'), reduce=S('add'))
    case('scatter_add', T([3, 4]), 0, I([[0, 1, 2, 0], [2, 2, 0, 1]]), T([2, 4], kind='pos'), grad=True)
    case('scatter_reduce', T([3, 4]), 0, I([[0, 1, 2, 0], [0, 2, 0, 1]]), T([2, 4], kind='pos'), S('amax'))
    case('scatter_reduce', T([3, 4]), 0, I([[0, 1, 2, 0], [0, 2, 0, 1]]), T([2, 4], kind='pos'), S('mean'), include_self=False)
    case('masked_select', x4, x4 > 0, grad=True)
    case('masked_scatter', x, x > 0, T([6], kind='pos'))
    case('nonzero', x4 > 0)
    case('argwhere', x4 > 0)
    case('take', x4, I([0, 5, 11]), grad=True)
    case('take_along_dim', x4, I([[0], [3], [1]]), 1, grad=True)
    case('index_put', x4, [I([0, 2]), I([1, 3])], T([2], kind='pos'), grad=True)
    case('index_put', x4, [x4 > 0], torch.tensor(9.5))
    case('index_put', x4, [I([0, 0]), I([1, 1])], T([2], kind='pos'), True)
    case('index', x4, [I([0, 2]), None], grad=True)
    case('index', x4, [None, I([3, 1])])
    case('index_add', x4, 0, I([0, 2]), T([2, 4], kind='pos'), grad=True)
    case('index_add', x4, 1, I([1]), T([3, 1], kind='pos'), alpha=2)
    case('index_copy', x4, 0, I([2, 0]), T([2, 4], kind='pos'), grad=True)
    case('index_fill', x4, 1, I([0, 3]), -1.5, grad=True)
    case('index_reduce', x4, 0, I([0, 2, 0]), T([3, 4], kind='pos'), S('prod'))
    case('put', T([2, 3]), I([0, 4]), T([2], kind='pos'))
    case('searchsorted', torch.tensor([-1.5, 0, 0.5, 2]), torch.tensor([0.25, -2, 2.5, 0]))
    case('searchsorted', torch.tensor([-1.5, 0, 0.5, 2]), torch.tensor([0.25, 0]), right=True)
    case('bucketize', torch.tensor([0.25, -2, 2.5, 0]), torch.tensor([-1.5, 0, 0.5, 2]))
    case('narrow_copy', x4, 0, 1, 2)
    case('select_scatter', x4, T([4], kind='pos'), 0, 1, grad=True)
    case('slice_scatter', x4, T([3, 2], kind='pos'), 1, 0, 4, 2, grad=True)
    case('diagonal_scatter', x4, T([3], kind='pos'), 1)
    case('masked_fill', I([1, 2, 3]), torch.tensor([True, False, True]), 7)
    # --- linear algebra
    m3 = M(3)
    case('mm', x, T([3, 2], kind='pos'), grad=True)
    case('bmm', T([2, 2, 3]), T([2, 3, 2], kind='pos'), grad=True)
    case('matmul', s, T([4, 2], kind='pos'), grad=True)
    case('matmul', T([4]), T([4, 2]))
    case('matmul', x, T([3, 2], kind='pos'), method=True)
    case('mv', x, T([3], kind='pos'), grad=True)
    case('addmm', T([2, 2]), x, T([3, 2], kind='pos'), beta=0.5, alpha=2, grad=True)
    case('addmv', T([2]), x, T([3], kind='pos'), grad=True)
    case('addbmm', T([2, 2]), T([2, 2, 3]), T([2, 3, 2], kind='pos'))
    case('baddbmm', T([2, 2, 2]), T([2, 2, 3]), T([2, 3, 2], kind='pos'), grad=True)
    case('addr', x, T([2]), T([3], kind='pos'))
    case('det', m3, grad=True)
    case('logdet', SPD(3), grad=True)
    case('slogdet', m3)
    case('inverse', m3, grad=True)
    case('linalg_inv', m3)
    case('linalg_det', m3)
    case('linalg_slogdet', m3)
    case('cholesky', SPD(3), grad=True)
    case('linalg_cholesky', SPD(3))
    case('linalg_solve', m3, T([3, 2], f64), grad=True)
    case('triangular_solve', T([3, 2], f64), m3.triu(), True)
    case('linalg_eigvalsh', SPD(3))
    case('linalg_eigh', SPD(3))
    case('linalg_svdvals', T([3, 2], f64))
    case('linalg_pinv', T([3, 2], f64) + torch.tensor([[1, 0], [0, 1], [0, 0]], dtype=f64))
    case('linalg_matrix_rank', m3)
    case('matrix_power', m3, 3, grad=True)
    case('linalg_matrix_power', m3, 2)
    case('matrix_exp', T([3, 3], f64, 'unit'), grad=True)
    case('chain_matmul', [x, T([3, 2]), T([2, 2])])
    case('linalg_multi_dot', [x, T([3, 2]), T([2, 2])], grad=True)
    case('pinverse', T([3, 2], f64) + torch.tensor([[1, 0], [0, 1], [0, 0]], dtype=f64))
    case('cholesky_inverse', SPD(3).cholesky())
    case('cholesky_solve', T([3, 2], f64), SPD(3).cholesky())
    case('linalg_qr', m3)
    case('linalg_cond', m3)
    case('linalg_lu_factor', m3)
    case('lu_unpack', *torch.linalg.lu_factor(m3))
    case('linalg_tensorinv', m3.reshape(3, 3), 1)
    case('linalg_vander', T([3], f64)) if hasattr(torch.linalg, 'vander') else None
    case('vander', T([3], f64), 3)
    case('linalg_householder_product', T([3, 2], f64), T([2], f64, 'unit'))
    case('mm', T([2, 3], f16), T([3, 2], f16))
    case('mm', T([2, 3], bf16), T([3, 2], bf16))
    case('mm', T([2, 3], f64), T([3, 2], f64))
    # --- nn functional
    img = T([1, 2, 4, 4])
    w2 = T([3, 2, 3, 3], kind='unit')
    case('conv2d', img, w2, T([3]), grad=True)
    case('conv2d', img, w2, None, [2, 2], [1, 1])
    case('conv2d', img, T([2, 1, 3, 3], kind='unit'), None, [1, 1], [1, 1], [1, 1], 2)
    case('conv1d', T([1, 2, 5]), T([3, 2, 2], kind='unit'), T([3]), grad=True)
    case('conv3d', T([1, 1, 3, 3, 3]), T([2, 1, 2, 2, 2], kind='unit'))
    case('conv_transpose1d', T([1, 2, 4]), T([2, 3, 2], kind='unit'), grad=True)
    case('conv_transpose2d', T([1, 2, 3, 3]), T([2, 1, 2, 2], kind='unit'), None, [2, 2], grad=True)
    case('convolution', img, w2, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1)
    case('max_pool2d', img, [2, 2], grad=True)
    case('max_pool2d', img, [3, 3], [1, 1], [1, 1])
    case('max_pool2d_with_indices', img, [2, 2])
    case('max_pool1d', T([1, 2, 6]), [2])
    case('max_pool3d', T([1, 1, 2, 4, 4]), [2, 2, 2])
    case('avg_pool2d', img, [2, 2], grad=True)
    case('avg_pool2d', img, [3, 3], [1, 1], [1, 1], count_include_pad=False)
    case('avg_pool1d', T([1, 2, 6]), [3], [2], grad=True)
    case('avg_pool3d', T([1, 1, 2, 4, 4]), [2, 2, 2])
    case('adaptive_avg_pool2d', img, [2, 1], grad=True)
    case('adaptive_avg_pool1d', T([1, 2, 6]), [4])
    case('adaptive_max_pool2d', img, [2, 2])
    case('adaptive_max_pool1d', T([1, 2, 6]), [3])
    case('adaptive_avg_pool3d', T([1, 1, 2, 4, 4]), [1, 2, 2])
    case('layer_norm', x4, [4], T([4], kind='pos'), T([4]), grad=True)
    case('layer_norm', x4, [4])
    case('native_layer_norm', x4, [4], None, None, 1e-5)
    rm, rv = T([2]), T([2], kind='pos')
    case('batch_norm', img, T([2], kind='pos'), T([2]), rm, rv, False, 0.1, 1e-5, False, grad=True)
    case('batch_norm', img, None, None, rm, rv, True, 0.1, 1e-5, False, grad=True)
    case('native_batch_norm', img, None, None, rm, rv, False, 0.1, 1e-5)
    case('group_norm', T([2, 4, 3]), 2, T([4], kind='pos'), T([4]), grad=True)
    case('instance_norm', T([2, 2, 4]), None, None, None, None, True, 0.1, 1e-5, False, grad=True)
    case('embedding', T([5, 3]), I([[0, 2], [4, 2]]), grad=True)
    case('embedding', T([5, 3]), I([0, 3]), 0)
    case('embedding_bag', T([5, 3]), I([0, 2, 4, 1]), I([0, 2]))
    case('softmax', x4, 1, grad=True)
    case('softmax', x4, 0, f64)
    case('log_softmax', x4, 1, grad=True)
    case('log_softmax', x4, 0, method=True)
    case('special_softmax', x4, 1)
    case('special_log_softmax', x4, 1)
    case('special_logsumexp', x4, [1])
    case('softmax', x4.to(f16) if False else x4.to(bf16), 1)
    case('silu', x4.to(bf16))
    case('gelu', x4.to(bf16))
    case('pad', x4, [1, 2], S('constant'), 0.5)
    case('pad', img, [1, 1, 1, 1], S('reflect'))
    case('constant_pad_nd', x4, [1, 1, 0, 1], -1, grad=True)
    case('reflection_pad1d', T([1, 2, 4]), [2, 1], grad=True)
    case('reflection_pad2d', img, [1, 1, 2, 0])
    case('replication_pad1d', T([1, 2, 4]), [2, 1], grad=True)
    case('replication_pad2d', img, [1, 1, 2, 0])
    case('replication_pad3d', T([1, 1, 2, 2, 2]), [1, 1, 1, 1, 1, 1])
    case('reflection_pad3d', T([1, 1, 2, 3, 3]), [1, 1, 1, 1, 1, 1])
    case('upsample_nearest2d', img, [8, 8], grad=True)
    case('upsample_nearest1d', T([1, 2, 3]), [6])
    case('upsample_bilinear2d', img, [6, 6], False, grad=True)
    case('upsample_bilinear2d', img, [6, 5], True)
    case('upsample_linear1d', T([1, 2, 3]), [5], False)
    case('upsample_bicubic2d', img, [6, 6], False)
    case('upsample_nearest3d', T([1, 1, 2, 2, 2]), [4, 4, 4])
    case('one_hot', I([0, 2, 1, 3]), 4)
    case('one_hot', I([0, 2, 1]))
    logits = T([3, 4])
    target = I([1, 0, 3])
    case('cross_entropy_loss', logits, target, grad=True)
    case('cross_entropy_loss', logits, target, T([4], kind='pos'), 0, -100, 0.125, grad=True)
    case('cross_entropy_loss', logits, target, None, 2)
    case('nll_loss', torch.log_softmax(logits, 1), target, grad=True)
    case('nll_loss', torch.log_softmax(logits, 1), target, T([4], kind='pos'), 0)
    case('nll_loss_nd', torch.log_softmax(logits, 1), target)
    case('nll_loss2d', torch.log_softmax(T([1, 3, 2, 2]), 1), I([[[0, 1], [2, 1]]]))
    case('mse_loss', x, y, grad=True)
    case('mse_loss', x, y, 0)
    case('l1_loss', x, y, grad=True)
    case('smooth_l1_loss', x, y, 1, 0.5, grad=True)
    case('huber_loss', x, y, 1, 0.75, grad=True)
    case('binary_cross_entropy', T([2, 3], kind='prob'), T([2, 3], kind='prob'), grad=True)
    case('binary_cross_entropy_with_logits', x, T([2, 3], kind='prob'), grad=True)
    case('kl_div', torch.log_softmax(x, 1), T([2, 3], kind='prob'), grad=True)
    case('soft_margin_loss', x, torch.sign(y), grad=True)
    case('margin_ranking_loss', T([4]), T([4], kind='pos'), torch.tensor([1, -1, 1, -1.]), 0.5, grad=True)
    case('hinge_embedding_loss', x, torch.sign(y), grad=True)
    case('poisson_nll_loss', x, pos, True, False, 1e-8, 1, grad=True)
    case('cosine_embedding_loss', x, y, torch.tensor([1, -1.]), grad=True)
    case('triplet_margin_loss', x, y, pos, grad=True)
    case('multilabel_margin_loss', T([2, 4]), I([[3, 0, -1, 1], [1, 2, 3, -1]]), grad=True)
    case('multi_margin_loss', logits, target, grad=True)
    case('dropout', x, 0.5, False)
    case('feature_dropout', img, 0.5, False)
    case('alpha_dropout', x, 0.5, False)
    case('linear', x, T([4, 3], kind='unit'), T([4]), grad=True)
    case('bilinear', T([2, 2]), T([2, 3]), T([4, 2, 3], kind='unit'), T([4]), grad=True)
    case('prelu', img, torch.tensor([0.25, 0.5]), grad=True)
    case('glu', x4, 1, grad=True)
    case('pixel_shuffle', T([1, 4, 2, 2]), 2)
    case('pixel_unshuffle', T([1, 1, 4, 4]), 2)
    case('channel_shuffle', T([1, 4, 2, 1]), 2)
    case('im2col', img, [2, 2], [1, 1], [0, 0], [1, 1])
    case('col2im', T([1, 8, 9]), [4, 4], [2, 2], [1, 1], [0, 0], [1, 1])
    case('grid_sampler', img, T([1, 2, 2, 2], kind='unit'), 0, 0, False, grad=True)
    case('affine_grid_generator', T([1, 2, 3], kind='unit'), [1, 1, 2, 3], False)
    case('hardsigmoid', x4.to(bf16))
    case('logsigmoid' if False else 'log_sigmoid', x4.to(f64), grad=True)
    # --- factories
    case('linspace', 0, 1, 5)
    case('linspace', -1, 2.5, 4, dtype=f64)
    case('logspace', 0, 2, 3)
    case('logspace', 0, 3, 4, 2)
    case('eye', 3)
    case('eye', 2, 3, dtype=i64)
    case('arange', 5)
    case('arange', 1, 7, 2)
    case('arange', 0, 1, 0.25, dtype=f64)
    case('full', [2, 3], 1.5)
    case('full', [2], 7, dtype=i32)
    case('zeros', [2, 3])
    case('zeros', [2], dtype=i16)
    case('ones', [3], dtype=f64)
    case('zeros_like', x)
    case('ones_like', x, dtype=i8)
    case('full_like', x, 2.5)
    case('empty_like', x) if False else None
    case('scalar_tensor', 2.5)
    case('range', 0, 3)
    case('hann_window', 5)
    case('hamming_window', 5, False)
    case('blackman_window', 5)
    case('bartlett_window', 5)
    case('kaiser_window', 5)
    case('new_zeros', x, [2])
    case('new_ones', x, [1, 2], dtype=f64)
    case('new_full', x, [2], 3.5)
    case('zeros', [2, 2], dtype=bf16)
    case('ones', [2], dtype=f16)
    case('ones', [2], dtype=b8)
    # --- sorting
    v = T([3, 4])
    case('sort', v, 1, grad=True)
    case('sort', v, 0, True)
    case('sort', v, stable=True, dim=1, descending=True)
    case('sort', v, 1, method=True)
    case('argsort', v, 1)
    case('argsort', v, 0, True)
    case('topk', v, 2, grad=True)
    case('topk', v, 2, dim=0, largest=False)
    case('topk', v, 1, 1, method=True)
    case('kthvalue', v, 2, 1, grad=True)
    case('msort', v)
    case('unique_consecutive', I([1, 1, 2, 2, 3, 1, 1]), True, True)
    case('unique_dim', I([[1, 2], [1, 2], [3, 4]]), 0)
    case('sort', T([5], f16))
    case('sort', T([5], bf16))
    case('topk', T([6], i32), 3)
    # --- in-place forms (the mutated self is recorded)
    ip = [
        ('add_', [x, y], {}), ('add_', [x, 2], {}), ('sub_', [x, y], {'alpha': 2}), ('mul_', [x, y], {}),
        ('div_', [x, y], {}), ('clamp_', [x, -0.5, 0.5], {}), ('clamp_min_', [x, 0], {}), ('clamp_max_', [x, 0.25], {}),
        ('abs_', [x], {}), ('neg_', [x], {}), ('exp_', [x], {}), ('sqrt_', [pos], {}), ('log_', [pos], {}),
        ('fill_', [x, 1.5], {}), ('zero_', [x], {}), ('pow_', [pos, 2], {}), ('masked_fill_', [x, x > 0, -1], {}),
        ('index_fill_', [x4, 0, I([1]), 0.5], {}), ('scatter_', [T([3, 4]), 1, I([[0], [2], [3]]), 2.5], {}),
        ('tril_', [x4], {}), ('triu_', [x4, 1], {}), ('relu_', [x], {}), ('sigmoid_', [x], {}), ('tanh_', [x], {}),
        ('floor_', [y], {}), ('ceil_', [y], {}), ('round_', [y], {}), ('addcmul_', [x, y, pos], {'value': 0.5}),
        ('addcdiv_', [x, y, pos], {}), ('lerp_', [x, y, 0.5], {}), ('copy_', [x, y], {}), ('sin_', [x], {}),
        ('cos_', [x], {}), ('reciprocal_', [y], {}), ('sign_', [x], {}), ('square_', [x], {}) if False else ('fmod_', [x, 0.75], {}),
        ('remainder_', [x, 0.75], {}), ('clip_', [x, -1, 1], {}), ('erf_', [x], {}), ('trunc_', [y], {}),
        ('frac_', [y], {}), ('atan2_', [x, y], {}), ('maximum' if False else 'hypot_', [x, y], {}),
        ('logical_not_', [p], {}), ('bitwise_and_', [I([5, 3, 6]), I([3, 3, 3])], {}),
        ('bitwise_or_', [I([5, 3, 6], i32), I([3, 3, 3], i32)], {}), ('mul_', [I([1, 2, 3], i16), 3], {}),
        ('add_', [I([1, 2, 250], u8), 10], {}), ('floor_divide_', [I([7, -7, 9]), I([2, 2, 4])], {}),
        ('index_add_', [x4, 0, I([0, 2]), T([2, 4], kind='pos')], {}), ('index_copy_', [x4, 1, I([0]), T([3, 1])], {}),
        ('masked_scatter_', [x, x > 0, T([6], kind='pos')], {}), ('scatter_add_', [T([3, 4]), 0, I([[0, 1, 2, 0]]), T([1, 4], kind='pos')], {}),
        ('index_put_', [x4, [I([0, 2]), I([1, 3])], T([2], kind='pos')], {}),
        ('put_', [T([2, 3]), I([0, 4]), T([2], kind='pos')], {}), ('exponential_' if False else 'renorm_', [T([3, 4]), 2, 0, 1.5], {}),
        ('hardtanh_', [x], {}), ('leaky_relu_', [x, 0.125], {}), ('elu_', [x], {}), ('silu_', [x], {}),
        ('hardswish_', [x], {}), ('nan_to_num_', [torch.tensor([float('nan'), 1.5])], {'nan': 0.25}),
        ('sgn_', [x], {}), ('deg2rad_', [x], {}), ('xlogy_', [pos, pos], {}), ('logit_', [T([2, 3], kind='prob')], {}),
        ('transpose_', [T([2, 3]), 0, 1], {}), ('unsqueeze_', [T([2, 3]), 0], {}), ('squeeze_', [T([2, 1, 3])], {}),
        ('t_', [T([2, 3])], {}), ('cumsum_', [T([2, 3]), 1], {}), ('cumprod_', [T([2, 3]), 0], {}),
        ('add_', [T([2, 3], f16), T([2, 3], f16, 'nz')], {}), ('mul_', [T([2, 3], bf16), T([2, 3], bf16, 'nz')], {}),
        ('digamma_', [pos], {}), ('lgamma_', [pos], {}), ('expm1_', [x], {}), ('log1p_', [pos], {}),
        ('rsqrt_', [pos], {}), ('asin_', [unit], {}), ('atan_', [x], {}), ('sinh_', [x], {}), ('cosh_', [x], {}),
        ('exp2_', [x], {}), ('log2_', [pos], {}), ('log10_', [pos], {}), ('erfc_', [x], {}), ('erfinv_', [unit], {}),
        ('i0_', [x], {}), ('sinc_', [y], {}), ('selu_', [x], {}), ('celu_', [x], {}), ('mish_', [x], {}),
        ('hardsigmoid_', [x], {}), ('relu6' if False else 'threshold_', [x, 0.5, -1], {}), ('heaviside_', [x, y], {}),
        ('eq_', [x, y], {}), ('lt_', [x, y], {}), ('ge_', [x, 0], {}), ('ne_', [x, y], {}),
        ('logical_and_', [p, q], {}), ('logical_or_', [p, q], {}), ('bitwise_xor_', [I([5, 3, 6]), I([3, 3, 3])], {}),
        ('gcd_', [I([12, 9, 7]), I([8, 6, 5])], {}), ('lcm_', [I([4, 3, 7]), I([6, 5, 7])], {}),
        ('fmax' if False else 'copysign_', [x, y], {}), ('nextafter_', [x, y], {}), ('float_power_', [pos.double(), 2], {}),
        ('true_divide_', [x, y], {}), ('subtract_', [x, y], {}), ('multiply_', [x, y], {}), ('divide_', [x, y], {}),
        ('rad2deg_', [x], {}), ('negative_', [x], {}), ('fix_', [y], {}), ('arctan_', [x], {}), ('absolute_', [x], {}),
    ]
    for name, args, kw in ip:
        case(name, *args, inplace=True, **kw)
    # --- the calling convention: overload choice, varargs, keywords, optional and enum arguments
    case('view', s, [4, 6], method=True, spread=True)
    case('permute', s, [2, 0, 1], method=True, spread=True)
    case('reshape', s, [6, -1], method=True, spread=True)
    case('repeat', x, [2, 1, 1], method=True, spread=True)
    case('expand', T([3, 1]), [2, 3, 4], method=True, spread=True)
    case('flip', s, [0, 1], method=True, spread=True)
    case('zeros', [2, 3], spread=True)
    case('ones', [2, 2], spread=True, dtype=i32)
    case('view', x, i32)
    case('to', x, f64)
    case('to', x, dtype=i64)
    case('type_as', x, I([1]))
    case('contiguous', img, memory_format=torch.channels_last)
    case('clone', img, memory_format=torch.channels_last)
    case('zeros', [2], device=torch.device('cpu'), layout=torch.strided)
    case('is_nonzero', torch.tensor([1.5]))
    case('is_same_size', x, y)
    case('is_floating_point', x)
    case('is_complex', x)
    case('is_signed', I([1], u8))
    case('numel', s, method=True)
    case('size', s, 1)
    case('stride', s, 0)
    case('item', torch.tensor([2.5]))
    case('sum', r, 1)
    case('amax', r, -1)
    case('mean', r, -1, True)
    case('std', r, False)
    case('max', x, y)
    case('where', x > 0)
    case('split', x4, [1, 3], 1)
    case('clamp', x, None, 0.5)
    case('arange', 5, dtype=i64)
    # torch.ops.aten.full([2], True) passes the bool as an int Scalar (int64 result) where eager
    # torch.full gives bool, as torchnode does: the case would record the JIT quirk, not PyTorch's rule.
    case('full', [2], True, known='torch.ops.aten passes a Python bool as an int Scalar (eager torch.full and torchnode give bool)')
    case('full', [2], 2, dtype=f64)
    case('nonzero_numpy', x4 > 0)
    case('unique_consecutive', I([1, 1, 2, 3, 3]), return_counts=True)
    case('unique_dim_consecutive', I([[1, 2], [1, 2], [3, 4]]), 0)
    case('histogram', r, 4)
    case('frexp', x)
    case('unsafe_split', x4, 2, 1)
    case('unsafe_chunk', x4, 2, 0)
    case('gradient', r, dim=1)
    case('corrcoef', r)
    case('cov', r, correction=0)
    case('einsum', S('ij,jk->ik'), [x, T([3, 2], kind='pos')], grad=True)
    case('logical_and', I([1, 0, 3], i8), I([1, 1, 0], i8))
    case('sort', I([3, -1, 2, 0], i16), descending=True)
    case('select', s, -1, 0)
    case('roll', s, [-1, 2], [0, 2])
    case('conv2d', img, w2, None, 1, S('same'), grad=True)
    case('conv1d', T([1, 2, 5]), T([3, 2, 2], kind='unit'), None, 1, S('valid'))
    case('avg_pool2d', img, [2, 2], divisor_override=3)
    case('max_pool2d', img, [3, 3], [2, 2], ceil_mode=True)
    case('cross_entropy_loss', logits, target, label_smoothing=0.25, grad=True)
    case('layer_norm', x4, [4], eps=0.125, grad=True)
    case('softmax', x4, -1, dtype=f64)
    case('argmax', r, None, True)
    case('kthvalue', v, 3, 0, keepdim=True)
    case('cumsum', r, dim=-1)
    case('eye', 2, dtype=b8)
    case('logspace', 0, 1, 3, 0.5)
    case('rsub', x, 2)
    case('remainder', 2, y)
    case('bitwise_and', I([5, 6, 7]), 3)
    case('where', x > 0, x, 0.5)
    case('add', I([1, 2, 3]), 2.5)
    case('mul', I([1, 0, 1], b8), True)
    case('upsample_nearest2d', img, None, [1.5, 1.5])
    case('upsample_bilinear2d', img, [6, 6], False, 1.5, 1.5)
    case('upsample_bilinear2d', img, None, True, [1.5, 1.5])
    case('fill_diagonal_', T([3, 3]), 0.5, inplace=True)
    case('index_put_', x4, [I([0, 0])], T([4], kind='pos'), accumulate=True, inplace=True)
    case('masked_fill_', I([1, 0, 1], b8), I([1, 0, 0], b8), True, inplace=True)
    case('add_', x, y, inplace=True, method=True)
    case('clamp_', x, -0.5, inplace=True, method=True)
    case('clamp_', x, min=-0.5, inplace=True, method=True,
         known='Tensor.clamp_ is hand-written (lib/tensor.ts) and takes (min, max) positionally, not a keyword object')


def version_dir():
    major, minor = torch.__version__.split('.')[:2]
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', f'{major}.{minor}')


def main():
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    build()
    outdir = sys.argv[1] if len(sys.argv) > 1 else version_dir()
    os.makedirs(outdir, exist_ok=True)
    ops = sorted({c['op'] for c in CASES})
    grads = sum(1 for c in CASES if 'grad' in c)
    obj = {
        'generator': {
            'torch_version': torch.__version__,
            'debian_package': 'python3-torch ' + _pkg_version(),
            'num_threads': 1,
            'script': 'scripts/make_op_parity.py',
            'recipe': 'one call per case through torch.ops.aten on fixed inputs; gradients of sum(out * W)',
        },
        'distinct_ops': len(ops),
        'grad_cases': grads,
        'cases': CASES,
        'skipped': SKIPPED,
    }
    path = os.path.join(outdir, 'ops_parity.json')
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'), allow_nan=False)
    print(f'wrote {path}: {len(CASES)} cases, {len(ops)} distinct ops, {grads} gradient cases, {len(SKIPPED)} skipped')


if __name__ == '__main__':
    main()
