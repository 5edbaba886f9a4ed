#!/usr/bin/env node
// Per-call overhead of a small op through the generic path (the generated Tensor
// methods and torch.* functions -> lib/ops/runtime.ts -> native/dispatch.cc), against
// libtorch's C++ API:
//   x.add(1), x.neg() on a 4-element float32 tensor   as a method and as torch.add / torch.ops.neg
//   the same at the native layer only                  N.callOp(handle, ...)
//   a 20-op chain (add, mul, sub, neg, five rounds)    methods, and torch.ops functions
//   C++: the same calls from libtorch's C++ API (bench/op_overhead.cpp, built by
//   `npm run bench` into build/bench/op_overhead), so "overhead" is JS minus C++:
//   what the binding adds to each call, apart from libtorch's own cost.
// Every result is disposed, so the figures are the calls, not the garbage collector.
// Rounds alternate the cases, each round starting at the next one (the C++ program runs
// once per round); the figure is the median over rounds of ns per call.
//   node bench/op-overhead.js [--rounds 9] [--calls 20000] [--json] [--cpp PATH]
'use strict';
const path = require('node:path');
const torch = require(path.join(__dirname, '..', 'dist'));
const { N } = require(path.join(__dirname, '..', 'dist', 'native.js'));

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const rounds = opt('--rounds', 9);
const cppIdx = argv.indexOf('--cpp');
const cppExe = cppIdx >= 0 ? argv[cppIdx + 1] : path.join(__dirname, '..', 'build', 'bench', 'op_overhead');
const haveCpp = fs.existsSync(cppExe);
const calls = opt('--calls', 20000);
torch.setNumThreads(1);

const x = torch.tensor([1, 2, 3, 4], { dtype: 'float32' });
const xh = x.handle;
const addScalar = N.opHandle('aten::add', 'Scalar');
const g = torch.ops;

// 20 ops, each disposing its input (the chain's intermediates).
function chain(ops) {
  let t = x;
  for (let r = 0; r < 5; r++) {
    for (const f of ops) {
      const n = f(t);
      if (t !== x) t.dispose();
      t = n;
    }
  }
  t.dispose();
}
const methodChain = [(t) => t.add(1), (t) => t.mul(2), (t) => t.sub(1), (t) => t.neg()];
const negOp = N.opHandle('aten::neg', '');
const genericChain = [(t) => g.add(t, 1), (t) => g.mul(t, 2), (t) => g.sub(t, 1), (t) => g.neg(t)];

const cases = {
  'x.add(1) (Tensor method)': [() => x.add(1).dispose(), 1],
  'torch.add(x, 1)': [() => torch.add(x, 1).dispose(), 1],
  'native only: N.callOp(add.Scalar)': [() => N.dispose(N.callOp(addScalar, xh, 1)), 1],
  'x.neg() (Tensor method)': [() => x.neg().dispose(), 1],
  'torch.ops.neg(x)': [() => g.neg(x).dispose(), 1],
  'native only: N.callOp(neg)': [() => N.dispose(N.callOp(negOp, xh)), 1],
  '20-op chain of methods, per op': [() => chain(methodChain), 20],
  '20-op chain of torch.ops, per op': [() => chain(genericChain), 20],
  'floor: N.numel (a call that does nothing)': [() => N.numel(xh), 1],
};

function time(fn, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t0) / n;
}
const samples = {};
for (const k of Object.keys(cases)) {
  samples[k] = [];
  time(cases[k][0], Math.max(1000, calls / 10)); // warm up (JIT, handles)
}
const cpp = { add: [], neg: [], chain: [] };
let cppError = haveCpp ? null : `${path.relative(process.cwd(), cppExe)} not built (npm run bench builds it)`;
for (let r = 0; r < rounds; r++) {
  // Each round starts at another case, so no case always runs first (after the C++
  // program, on cold caches) or always after the same neighbour.
  const entries = Object.entries(cases);
  for (let j = 0; j < entries.length; j++) {
    const [k, [fn, per]] = entries[(j + r) % entries.length];
    samples[k].push(time(fn, Math.ceil(calls / per)) / per);
  }
  if (!cppError) {
    const c = spawnSync(cppExe, [String(calls)], { encoding: 'utf8', timeout: 120000 });
    if (c.status !== 0) cppError = `${cppExe} failed (${c.status ?? c.signal}): ${(c.stderr || '').trim().split('\n').pop()}`;
    else {
      const v = JSON.parse(c.stdout.trim().split('\n').pop());
      for (const k of Object.keys(cpp)) cpp[k].push(v[k]);
    }
  }
}
const median = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s[Math.floor(s.length / 2)];
};
const result = {};
for (const k of Object.keys(cases)) result[k] = median(samples[k]);
const floor = cppError ? null : { add: median(cpp.add), neg: median(cpp.neg), chain: median(cpp.chain) };
// What the binding adds per call: JS minus C++ for the same call, medians of the same run.
const overhead = floor && {
  'x.add(1) method': result['x.add(1) (Tensor method)'] - floor.add,
  'torch.add(x, 1)': result['torch.add(x, 1)'] - floor.add,
  'x.neg() method': result['x.neg() (Tensor method)'] - floor.neg,
  'torch.ops.neg(x)': result['torch.ops.neg(x)'] - floor.neg,
  '20-op chain of methods, per op': result['20-op chain of methods, per op'] - floor.chain,
  '20-op chain of torch.ops, per op': result['20-op chain of torch.ops, per op'] - floor.chain,
};
if (argv.includes('--json')) {
  console.log(JSON.stringify({ version: torch.version, rounds, calls, medianNsPerCall: result, cppNsPerCall: floor, overheadNs: overhead, cppError }, null, 2));
} else {
  console.log(`op overhead, libtorch ${torch.version}, 1 thread, ${rounds} rounds x ${calls} calls; median ns per call`);
  for (const [k, v] of Object.entries(result)) console.log(`  ${k.padEnd(44)} ${(v / 1000).toFixed(2)} us`);
  if (floor) {
    console.log(`  C++ (libtorch's own API, same calls): x.add(1) ${(floor.add / 1000).toFixed(2)} us, x.neg() ${(floor.neg / 1000).toFixed(2)} us, chain ${(floor.chain / 1000).toFixed(2)} us per op`);
    console.log('  overhead per call (JS minus C++, the binding\'s own cost; target 2 us):');
    for (const [k, v] of Object.entries(overhead)) console.log(`    ${k.padEnd(42)} ${(v / 1000).toFixed(2)} us`);
  } else console.log(`  C++ floor: ${cppError}`);
}
