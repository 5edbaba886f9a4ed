// A real PyTorch program (examples/port/ops_program.py) that uses the generic ops,
// indexing and the dtype rule, ported line by line (examples/port/ops_program.js):
// both run here, against the same engine version, and must print the same lines
// (losses to 9 digits, counts, weights).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as torch from '../lib';

const PYTHON = '/usr/bin/python3';
const root = path.join(__dirname, '..');
const pyTorch = (() => {
  if (!fs.existsSync(PYTHON)) return null;
  const r = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60000 });
  return r.status === 0 ? r.stdout.trim() : null;
})();
const majorMinor = (v: string) => v.split('.').slice(0, 2).join('.');
const why = !pyTorch
  ? 'no python3 with torch'
  : majorMinor(pyTorch) !== majorMinor(torch.version) ? `python3's torch ${pyTorch} is not libtorch ${torch.version}` : null;

(why ? test.skip : test)(`the ported program prints PyTorch's numbers${why ? ` [skipped: ${why}]` : ''}`, () => {
  const py = spawnSync(PYTHON, [path.join(root, 'examples', 'port', 'ops_program.py')], { encoding: 'utf8', timeout: 120000 });
  const js = spawnSync(process.execPath, [path.join(root, 'examples', 'port', 'ops_program.js')], { encoding: 'utf8', timeout: 120000 });
  expect(py.status).toBe(0);
  expect(js.status).toBe(0);
  expect(js.stdout.split('\n').length).toBeGreaterThan(8);
  expect(js.stdout).toBe(py.stdout);
}, 180000);
