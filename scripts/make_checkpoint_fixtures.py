#!/usr/bin/python3
"""Checkpoint fixtures for torchnode's serialize tests, written by real PyTorch.

Usage (Debian's python3-torch 1.13, NOT a python3 without torch):

    /usr/bin/python3 scripts/make_checkpoint_fixtures.py [OUTDIR]

Writes into OUTDIR, by default test/fixtures/<major.minor of torch.__version__>/checkpoints:

  cnn_state_dict.pt    torch.save(CNN().state_dict()) after torch.manual_seed(0): the seed
                       CNN, which torchnode's `new nn.CNN()` equals bit for bit after manualSeed(0)
  checkpoint.pt        {'model_state_dict', 'optimizer_state_dict', 'epoch': 2, 'loss', 'batch': (x, y)}
                       for SmallNet after 3 Adam steps (lr=0.01) on `batch` (the tutorial layout)
  misc.pt              every dtype, views sharing one storage, a Parameter, and plain values
                       (big ints, floats, str, bytes, None, list, tuple, set, dicts with int and
                       mixed keys, an OrderedDict)
  misc_deflate.pt      misc.pt re-zipped with deflate compression
  misc_zip64.pt        misc.pt re-zipped by Python's zipfile with ZIP64 extra fields on every entry
                       and a ZIP64 end record (as for files over 4 GiB)
  legacy.pt            a pre-1.6 (non-zip) torch.save file (its storage keys are object ids,
                       so only this file differs between runs)
  small.safetensors    a safetensors file written by hand (the `safetensors` package is not used)
  expected.json        what the JS tests check: per tensor shape, dtype, float64 sum, first values
                       and the SHA-256 of its bytes; SmallNet's parameters after one more Adam
                       step on `batch` (what resuming from checkpoint.pt must give); and
                       make_plain() pickled by Python at protocols 0-5

This module also defines CNN, SmallNet and make_misc(), which the tests import to load
torchnode's files back into PyTorch.
"""
import collections
import hashlib
import json
import os
import pickle
import struct
import sys
import zipfile

import torch
import torch.nn as nn


from seed_cnn import CNN  # noqa: E402  (scripts/seed_cnn.py)


def SmallNet():
    """The CNN's layer types at a fixture-friendly size: [N, 1, 8, 8] -> [N, 10]."""
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))


def adam_step(model, opt, batch):
    x, y = batch
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def describe(t):
    flat = t.detach().reshape(-1)
    first = flat[:4]
    return {
        'shape': list(t.shape),
        'dtype': str(t.dtype).replace('torch.', ''),
        'sum': float(flat.double().sum().item()) if flat.numel() else 0.0,
        'first': [bool(v) if t.dtype == torch.bool else (int(v) if not t.is_floating_point() else float(v)) for v in first.tolist()],
        'sha256': hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest(),
    }


def make_misc():
    """Every dtype, views sharing one storage, a Parameter, and plain values."""
    base = torch.arange(24, dtype=torch.float32).view(4, 6)
    return {
        'f32': torch.tensor([1.5, -2.25, 3.0]),
        'f64': torch.tensor([[1.0 / 3, -2.5]], dtype=torch.float64),
        'i64': torch.arange(6).view(2, 3) - 2 ** 40,
        'i32': torch.tensor([-1, 2 ** 31 - 1], dtype=torch.int32),
        'i16': torch.tensor([-3, 300], dtype=torch.int16),
        'i8': torch.tensor([-128, 127], dtype=torch.int8),
        'u8': torch.tensor([0, 255, 7], dtype=torch.uint8),
        'bool': torch.tensor([True, False, True]),
        'scalar': torch.tensor(3.5),
        'empty': torch.zeros(0, 3),
        'base': base,
        'transposed': base.t(),
        'sliced': base[1:3, ::2],
        'row': base[2],
        'param': nn.Parameter(torch.ones(2)),
        'grad': torch.ones(2, requires_grad=True),
        'big': 2 ** 70,
        'neg': -5,
        'float': 0.1,
        'str': 'h\u00e9llo \U0001F600',
        'bytes': b'\x00\xffab',
        'empty_bytes': b'',
        'none': None,
        'flags': (True, False),
        'list': [1, 2.5, 'x', [None]],
        'tuple': (1, (2, 3)),
        'set': {7},
        'int_keys': {0: 'a', 5: 'b'},
        'mixed_keys': {1: 'a', 'x': 'b', (1, 2): 'c'},
        'str_digit_keys': {'0': 'zero'},
        'ordered': collections.OrderedDict([('b', 1), ('a', 2)]),
        'device': torch.device('cpu'),
        'dtype': torch.float64,
    }


def make_plain():
    """Plain Python values for the pickle-reader tests (no torch)."""
    shared = [1]
    return {
        'a': [1, 2.5, 'x', None, True, False], 'b': (1, 2), 'big': 2 ** 100, 'neg': -2 ** 40, 'i32': -7,
        'i16': 40000, 'bytes': b'\x00\x01\xff', 'ba': bytearray(b'ab'), 'nested': {'k': {'z': []}},
        'od': collections.OrderedDict([('q', 1), ('p', 2)]), 'set': {1}, 'fs': frozenset({2}),
        'unicode': 'line\nback\\slash \u00e9\U0001F600', 'f': -0.5, 's1': shared, 's2': shared,
        'long_list': list(range(1001)), 'empty_tuple': (), 't4': (1, 2, 3, 4), 'ints': {0: 'zero'},
    }


def rezip(src, dst, compression):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w', compression=compression) as zout:
        for info in zin.infolist():
            # A fixed timestamp keeps the fixture byte-for-byte reproducible.
            zout.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), zin.read(info.filename), compress_type=compression)


def write_safetensors(path, tensors, metadata):
    """The safetensors layout by hand: u64 header length, JSON header padded with spaces, data."""
    names = {torch.float32: 'F32', torch.float64: 'F64', torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8', torch.bool: 'BOOL'}
    header = {'__metadata__': metadata}
    # The reference writer orders by alignment (larger elements first), then by name.
    order = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    offset = 0
    blobs = []
    for name, t in order:
        data = t.contiguous().numpy().tobytes()
        header[name] = {'dtype': names[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    expected = {'generator': {'torch': torch.__version__, 'script': 'scripts/make_checkpoint_fixtures.py'}}

    # (a) the seed CNN's state dict
    torch.manual_seed(0)
    cnn = CNN()
    torch.save(cnn.state_dict(), os.path.join(out, 'cnn_state_dict.pt'))
    expected['cnn_state_dict'] = {k: describe(v) for k, v in cnn.state_dict().items()}

    # (b) a training checkpoint in the tutorial layout, after 3 Adam steps
    torch.manual_seed(0)
    net = SmallNet()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g))
    loss = None
    for _ in range(3):
        loss = adam_step(net, opt, batch)
    torch.save({'model_state_dict': net.state_dict(), 'optimizer_state_dict': opt.state_dict(), 'epoch': 2,
                'loss': loss, 'batch': batch}, os.path.join(out, 'checkpoint.pt'))
    osd = opt.state_dict()
    expected['checkpoint'] = {
        'model_state_dict': {k: describe(v) for k, v in net.state_dict().items()},
        'optimizer_state': {str(i): {k: describe(v) for k, v in s.items()} for i, s in osd['state'].items()},
        'param_groups': [{k: (list(v) if isinstance(v, tuple) else v) for k, v in grp.items()} for grp in osd['param_groups']],
        'epoch': 2,
        'loss': loss,
    }
    adam_step(net, opt, batch)
    expected['checkpoint']['after_one_more_step'] = {k: describe(v) for k, v in net.state_dict().items()}

    # (c) every dtype, views, a Parameter and plain values
    misc = make_misc()
    torch.save(misc, os.path.join(out, 'misc.pt'))
    expected['misc'] = {k: describe(v) for k, v in misc.items() if isinstance(v, torch.Tensor)}
    rezip(os.path.join(out, 'misc.pt'), os.path.join(out, 'misc_deflate.pt'), zipfile.ZIP_DEFLATED)
    limit = zipfile.ZIP64_LIMIT
    zipfile.ZIP64_LIMIT = 0  # every size and offset "exceeds" it, so every ZIP64 record is written
    try:
        rezip(os.path.join(out, 'misc.pt'), os.path.join(out, 'misc_zip64.pt'), zipfile.ZIP_STORED)
    finally:
        zipfile.ZIP64_LIMIT = limit
    assert torch.equal(torch.load(os.path.join(out, 'misc_deflate.pt'), weights_only=False)['sliced'], misc['sliced'])
    # (PyTorch's miniz refuses Python's ZIP64 layout, whose 32-bit end record is not saturated;
    # Python's zipfile reads it, and so must torchnode.)
    with zipfile.ZipFile(os.path.join(out, 'misc_zip64.pt')) as z:
        assert z.testzip() is None

    # (d) a legacy (pre-1.6) file and a hand-written safetensors file
    torch.save({'w': torch.ones(2)}, os.path.join(out, 'legacy.pt'), _use_new_zipfile_serialization=False)
    st = {
        'weight': torch.arange(6, dtype=torch.float32).view(2, 3) / 4,
        'bias': torch.tensor([0.5, -1.0, 2.0]),
        'steps': torch.tensor([3, -2 ** 40], dtype=torch.int64),
        'f64': torch.tensor([1e-300], dtype=torch.float64),
        'ids': torch.tensor([[1, -2]], dtype=torch.int32),
        'bytes': torch.tensor([1, 2, 250], dtype=torch.uint8),
        'mask': torch.tensor([True, False, True, True]),
        'empty': torch.zeros(0),
    }
    write_safetensors(os.path.join(out, 'small.safetensors'), st, {'format': 'pt', 'note': 'hand-written'})
    expected['safetensors'] = {k: describe(v) for k, v in st.items()}

    # (e) plain values pickled by Python at every protocol
    expected['pickles'] = {str(p): pickle.dumps(make_plain(), protocol=p).hex() for p in range(6)}

    with open(os.path.join(out, 'expected.json'), 'w') as f:
        json.dump(expected, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    major, minor = torch.__version__.split('.')[:2]
    here = os.path.dirname(os.path.abspath(__file__))
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, '..', 'test', 'fixtures', f'{major}.{minor}', 'checkpoints'))
