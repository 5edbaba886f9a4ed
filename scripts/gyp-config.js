#!/usr/bin/env node
// Prints the libtorch flags binding.gyp needs, read from libtorch.json (the same
// record CMake reads), one word per line: include_dirs | defines | libraries | ldflags.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const configPath = process.env.TORCHNODE_CONFIG || path.join(__dirname, '..', 'libtorch.json');
let rec;
try {
  rec = JSON.parse(fs.readFileSync(configPath, 'utf8'));
} catch (e) {
  console.error(`torchnode: cannot read ${configPath} (${e.message}); run \`node scripts/install.js\` first`);
  process.exit(1);
}
const libDir = rec.libDir;
const hasCuda = fs.existsSync(path.join(libDir, 'libtorch_cuda.so'));
// c10d's Gloo process group needs Gloo's headers (Debian: libgloo-dev); CMake gets
// these definitions from TorchConfig, node-gyp from here.
const hasGloo = [...rec.includeDirs, '/usr/include', '/usr/local/include'].some((d) => fs.existsSync(path.join(d, 'gloo', 'algorithm.h')));
const what = process.argv[2];
let out = [];
if (what === 'include_dirs') {
  out = rec.includeDirs;
} else if (what === 'defines') {
  out = ['_GLIBCXX_USE_CXX11_ABI=1', ...(hasCuda ? ['TORCHNODE_WITH_CUDA'] : []), ...(hasGloo ? ['USE_DISTRIBUTED', 'USE_C10D_GLOO'] : [])];
  if (process.env.TORCHNODE_NO_DISTRIBUTED === '1') out.push('TORCHNODE_NO_DISTRIBUTED');
} else if (what === 'libraries') {
  out = [`-L${libDir}`, '-ltorch', '-ltorch_cpu', '-lc10'];
  if (hasCuda) out.push('-Wl,--no-as-needed', '-ltorch_cuda', '-Wl,--as-needed');
} else if (what === 'ldflags') {
  out = process.platform === 'darwin' ? [`-Wl,-rpath,${libDir}`] : [`-Wl,-rpath,${libDir}`, '-Wl,--enable-new-dtags'];
} else {
  console.error('usage: gyp-config.js include_dirs|defines|libraries|ldflags');
  process.exit(2);
}
console.log(out.join('\n'));
