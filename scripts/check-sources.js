#!/usr/bin/env node
// Fails when binding.gyp and CMakeLists.txt list different native sources.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function cmakeSources() {
  const text = fs.readFileSync(path.join(root, 'CMakeLists.txt'), 'utf8');
  const m = /set\(TORCHNODE_SOURCES([\s\S]*?)\)/.exec(text);
  if (!m) throw new Error('CMakeLists.txt: set(TORCHNODE_SOURCES ...) not found');
  return m[1].split(/\s+/).filter(Boolean);
}

function gypSources() {
  const text = fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  const gyp = JSON.parse(text);
  return gyp.targets.find((t) => t.target_name === 'torchnode').sources;
}

function diff() {
  const a = cmakeSources();
  const b = gypSources();
  const onlyCmake = a.filter((s) => !b.includes(s));
  const onlyGyp = b.filter((s) => !a.includes(s));
  const onDisk = fs.readdirSync(path.join(root, 'native')).filter((f) => f.endsWith('.cc')).map((f) => `native/${f}`);
  const unlisted = onDisk.filter((s) => !a.includes(s));
  return { cmake: a, gyp: b, onlyCmake, onlyGyp, unlisted };
}

module.exports = { cmakeSources, gypSources, diff };

if (require.main === module) {
  const d = diff();
  const problems = [];
  if (d.onlyCmake.length) problems.push(`only in CMakeLists.txt: ${d.onlyCmake.join(', ')}`);
  if (d.onlyGyp.length) problems.push(`only in binding.gyp: ${d.onlyGyp.join(', ')}`);
  if (d.unlisted.length) problems.push(`in native/ but in neither build: ${d.unlisted.join(', ')}`);
  if (problems.length) {
    console.error(`torchnode: native source lists differ:\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`torchnode: binding.gyp and CMakeLists.txt list the same ${d.cmake.length} sources`);
}
