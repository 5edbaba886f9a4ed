#!/usr/bin/env node
'use strict';
/**
 * `npm install` entry: resolve libtorch, write libtorch.json, print what was chosen (and, for a
 * downloaded libtorch, the zip's sha256 as LIBTORCH_SHA256=<hex>), then build the native addon
 * and the TypeScript output only when something changed.
 *
 *   TORCHNODE_SKIP_BUILD=1   resolve and write libtorch.json only (no native build)
 *   TORCHNODE_SKIP_TS=1      do not compile lib/ to dist/
 */

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const lt = require('./libtorch');

const ROOT = path.resolve(__dirname, '..');
const ADDON = path.join('build', 'Release', 'torchnode.node');
/** Key of the libtorch record the addon was last built against (written after a build here). */
const STAMP = path.join('build', '.torchnode-libtorch-key');

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return null;
  }
}

/** Newest file under dir (recursive): { file, mtimeMs } or null. */
function newestFile(dir) {
  let best = null;
  const walk = (d) => {
    let entries;
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const m = mtime(p);
        if (m != null && (!best || m > best.mtimeMs)) best = { file: p, mtimeMs: m };
      }
    }
  };
  walk(dir);
  return best;
}

function sameContent(a, b) {
  if (!a || !b) return false;
  const strip = (r) => JSON.stringify({ ...r, resolvedAt: undefined });
  return strip(a) === strip(b);
}

/** Why the native addon must be (re)built, or null when it is up to date. */
function nativeBuildReason({ root = ROOT, oldRecord = null, newRecord }) {
  const addon = path.join(root, ADDON);
  const addonTime = mtime(addon);
  if (addonTime == null) return `${ADDON} is missing`;
  let stamp = null;
  try {
    stamp = fs.readFileSync(path.join(root, STAMP), 'utf8');
  } catch {
    stamp = null;
  }
  const key = lt.buildKey(newRecord);
  if (stamp != null) {
    if (stamp !== key) return stamp.startsWith(lt.recordKey(newRecord)) ? "Gloo's headers appeared or went since the last build" : 'libtorch changed since the last build';
  } else if (oldRecord && lt.recordKey(oldRecord) !== lt.recordKey(newRecord)) {
    return 'libtorch changed';
  }
  const sources = [];
  const native = newestFile(path.join(root, 'native'));
  if (native) sources.push(native);
  const cml = mtime(path.join(root, 'CMakeLists.txt'));
  if (cml != null) sources.push({ file: path.join(root, 'CMakeLists.txt'), mtimeMs: cml });
  for (const s of sources) {
    if (s.mtimeMs > addonTime) return `${path.relative(root, s.file)} is newer than ${ADDON}`;
  }
  return null;
}

/** Why dist/ must be rebuilt from lib/, or null (also null when lib/ or typescript is absent). */
function tsBuildReason(root = ROOT) {
  if (!fs.existsSync(path.join(root, 'lib'))) return null;
  if (!fs.existsSync(path.join(root, 'node_modules', 'typescript'))) return null;
  const out = mtime(path.join(root, 'dist', 'index.js'));
  if (out == null) return 'dist/index.js is missing';
  const src = newestFile(path.join(root, 'lib'));
  if (src && src.mtimeMs > out) return `${path.relative(root, src.file)} is newer than dist/index.js`;
  return null;
}

function run(cmd, args, what, root) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env });
  if (r.error) throw new lt.InstallError(`${what} could not start: ${r.error.message}`);
  if (r.status !== 0) throw new lt.InstallError(`${what} failed (${r.signal || 'exit code ' + r.status})`);
}

async function main(env = process.env, root = ROOT) {
  const file = lt.configPath(env);
  let oldRecord = null;
  try {
    oldRecord = lt.readRecord(file);
  } catch (e) {
    console.log(`${e.message} (it will be rewritten)`);
  }
  const record = await lt.resolveLibtorch(env);
  if (!sameContent(oldRecord, record)) lt.writeRecord(record, file);
  console.log(lt.describeRecord(record));
  const sum = lt.checksumLine(record);
  if (sum) console.log(sum);

  if (lt.truthy(env.TORCHNODE_SKIP_BUILD)) {
    console.log('torchnode: native build skipped (TORCHNODE_SKIP_BUILD=1)');
  } else if (!fs.existsSync(path.join(root, 'CMakeLists.txt')) && !fs.existsSync(path.join(root, 'native'))) {
    console.log('torchnode: no native sources (CMakeLists.txt, native/) here; native build skipped');
  } else {
    const why = nativeBuildReason({ root, oldRecord, newRecord: record });
    if (why) {
      const script = path.join(root, 'scripts', 'build-native.js');
      if (!fs.existsSync(script)) throw new lt.InstallError(`cannot build the native addon (${why}): ${script} is missing`);
      console.log(`torchnode: building the native addon (${why})`);
      // A clean build when only Gloo's headers changed: no source did, so the build tool
      // would find nothing to do, but native/distributed.cc's __has_include now differs.
      const clean = /Gloo's headers/.test(why) ? ['--clean'] : [];
      run(process.execPath, [script, ...clean], 'node scripts/build-native.js', root);
      fs.mkdirSync(path.join(root, 'build'), { recursive: true });
      fs.writeFileSync(path.join(root, STAMP), lt.buildKey(record));
    } else {
      console.log('torchnode: native addon up to date');
    }
  }

  if (lt.truthy(env.TORCHNODE_SKIP_TS)) return record;
  const tsWhy = tsBuildReason(root);
  if (tsWhy) {
    console.log(`torchnode: compiling TypeScript (${tsWhy})`);
    run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], 'tsc -p tsconfig.json', root);
    const esm = path.join(root, 'scripts', 'write-esm-entry.js');
    if (fs.existsSync(esm)) run(process.execPath, [esm], 'node scripts/write-esm-entry.js', root);
    else console.log(`torchnode: ${path.relative(root, esm)} not found; ESM entry not written`);
  }
  return record;
}

module.exports = { main, nativeBuildReason, tsBuildReason, ADDON, STAMP };

if (require.main === module) {
  // exit through process.exit so that the resolver's exit hook removes half-done temp folders
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  main().catch((e) => {
    if (e && e.expected) {
      const msg = String(e.message);
      console.error(msg.startsWith('torchnode:') ? msg : `torchnode: ${msg}`);
    } else {
      console.error('torchnode: install failed:', e && e.stack ? e.stack : e);
    }
    process.exitCode = 1;
  });
}
