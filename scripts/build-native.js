#!/usr/bin/env node
// Builds the native addon against the libtorch recorded in libtorch.json.
//   node scripts/build-native.js          cmake-js (primary build) -> build/Release/torchnode.node
//   node scripts/build-native.js --gyp    node-gyp with binding.gyp  -> build/Release/torchnode.node
//   --clean                               start from an empty build folder
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const useGyp = args.includes('--gyp');
const clean = args.includes('--clean');
const configPath = process.env.TORCHNODE_CONFIG || path.join(root, 'libtorch.json');

function fail(msg) {
  console.error(`torchnode: ${msg}`);
  process.exit(1);
}

if (!fs.existsSync(configPath)) {
  fail(`${configPath} not found: run \`node scripts/install.js\` (or \`npm install\`) to locate libtorch first`);
}
const jobs = String(Math.max(1, Number(process.env.TORCHNODE_JOBS) || os.availableParallelism?.() || os.cpus().length));
const started = Date.now();

// Node's own headers, so neither cmake-js nor node-gyp downloads them: npm's
// nodedir when set, else the headers installed beside this node binary
// (<prefix>/include/node, present in official and distribution builds).
function nodeDir() {
  const fromNpm = process.env.npm_config_nodedir;
  if (fromNpm && fs.existsSync(path.join(fromNpm, 'include', 'node', 'node_api.h'))) return fromNpm;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  return undefined; // let the tool fetch headers for this Node version
}
const nodedir = nodeDir();

function run(cmd, argv) {
  const env = { ...process.env, TORCHNODE_CONFIG: configPath };
  if (nodedir) env.npm_config_nodedir = nodedir;
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', env });
  if (r.error) fail(`could not run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`native build failed (${path.basename(cmd)} exited with ${r.status})`);
}

if (clean) fs.rmSync(path.join(root, 'build'), { recursive: true, force: true });

if (useGyp) {
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root, path.dirname(process.execPath)] });
  run(process.execPath, [nodeGyp, 'rebuild', `--jobs=${jobs}`, ...(nodedir ? [`--nodedir=${nodedir}`] : [])]);
} else {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  const addonApi = require('node-addon-api').include_dir.replace(/^"|"$/g, '');
  run(process.execPath, [
    cmakeJs, 'compile', '--out', 'build', '--parallel', jobs,
    `--CDNODE_ADDON_API_DIR=${path.resolve(root, addonApi)}`,
    `--CDTORCHNODE_CONFIG=${configPath}`,
  ]);
}
// Record which libtorch this build used, so `npm install` knows when to rebuild.
try {
  const lt = require('./libtorch');
  fs.writeFileSync(path.join(root, 'build', '.torchnode-libtorch-key'), lt.recordKey(lt.readRecord(configPath)));
} catch (e) {
  console.warn(`torchnode: could not write the build stamp (${e.message})`);
}
const seconds = (Date.now() - started) / 1000;
try {
  fs.writeFileSync(path.join(root, 'build', '.build-time'), JSON.stringify({ seconds, tool: useGyp ? 'node-gyp' : 'cmake-js', clean, at: new Date().toISOString() }));
} catch {
  // Only the benchmark reads it.
}
console.log(`torchnode: native build (${useGyp ? 'node-gyp' : 'cmake-js'}) finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
