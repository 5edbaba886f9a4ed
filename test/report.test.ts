// The training report: confusion matrix, PNG rendering, the self-contained HTML page,
// and the report npm run train writes next to the model.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { datasets, defaultGenerator, evaluate, nn, tensor, trainInThisThread, TensorDataset, BatchEvent, Tensor } from '../lib';
import { buildReport, collectReportData, confusionMatrix, grayPng, writeReport, ReportData } from '../lib/report';

const cli = path.join(__dirname, '..', 'dist', 'cli', 'train.js');
const run = (args: string[], cwd?: string) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120000, cwd });
const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tn-report-'));

/** The smallest valid report data: every section empty. */
function emptyData(): ReportData {
  return {
    title: 'empty', createdAt: new Date(0).toISOString(), settings: {}, history: [], batchLosses: [], accuracy: null,
    summary: null, confusion: null, misclassified: [], kernels: null, featureMaps: [],
  };
}

/** Every `<img src="data:image/png;base64,...">`, decoded. */
function images(html: string): PNG[] {
  return [...html.matchAll(/<img [^>]*src="data:image\/png;base64,([A-Za-z0-9+/=]+)"/g)].map((m) => PNG.sync.read(Buffer.from(m[1], 'base64')));
}

// One tiny training shared by the tests that need a trained model.
let tinyRun: Promise<{ model: nn.Module; history: any[]; batchLosses: BatchEvent[]; accuracy: number | null }> | null = null;
function tiny() {
  tinyRun ??= (async () => {
    const batchLosses: BatchEvent[] = [];
    const r = await trainInThisThread({ seed: 0, limit: 300, epochs: 1, threads: 1, testLimit: 200, onBatch: (e) => batchLosses.push(e) });
    return { model: r.model, history: r.history, batchLosses, accuracy: r.accuracy };
  })();
  return tinyRun;
}

describe('report: throw cases', () => {
  test('writeReport into a missing folder says so and leaves no temporary file', () => {
    const dir = tmpdir();
    const file = path.join(dir, 'missing', 'r.html');
    expect(() => writeReport(file, emptyData())).toThrow(`writeReport: cannot write ${file}: the folder ${path.join(dir, 'missing')} does not exist`);
    expect(fs.readdirSync(dir)).toEqual([]);
    // A failing rename (the target is a folder) cleans up its temporary file too.
    fs.mkdirSync(path.join(dir, 'taken.html'));
    expect(() => writeReport(path.join(dir, 'taken.html'), emptyData())).toThrow(/writeReport: cannot write .*taken\.html: /);
    expect(fs.readdirSync(dir)).toEqual(['taken.html']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('bad report data is a TypeError naming the field', () => {
    expect(() => buildReport({ ...emptyData(), history: 'x' as never })).toThrow(new TypeError("Expected an array of epoch records for data.history but received 'x'"));
    expect(() => buildReport({ ...emptyData(), batchLosses: [{ epoch: 1, batch: 1 }] as never })).toThrow(/for data\.batchLosses\[0\]/);
    expect(() => buildReport({ ...emptyData(), accuracy: '0.9' as never })).toThrow(/Expected a number or null for data\.accuracy/);
    expect(() => buildReport({ ...emptyData(), kernels: { name: 'k', shape: [2, 3, 3], data: new Float32Array(9) } })).toThrow(/data\.kernels: shape \[2, 3, 3\] needs 18 values but data has 9/);
    expect(() => buildReport(null as never)).toThrow(TypeError);
    expect(() => collectReportData({ model: {} as never, history: [] })).toThrow(/Expected a Module for model/);
    expect(() => collectReportData({ model: new nn.CNN(), history: {} as never })).toThrow(/Expected an array of epoch records for history/);
  });

  test('grayPng and confusionMatrix reject bad arguments', () => {
    expect(() => grayPng([0, 1, 2], 2, 2)).toThrow('grayPng: expected 2x2 = 4 values but received 3');
    expect(() => grayPng([0, 1, 2, 3], 2, 2, { scale: 0 })).toThrow(/Expected an integer from 1 to 64 for scale but received 0/);
    expect(() => grayPng([0, 1, 2, 3], 2, 2, { min: 1, max: 0 })).toThrow(/max \(0\) is below min \(1\)/);
    expect(() => confusionMatrix({} as never, new TensorDataset(tensor([[1]]), tensor([0])))).toThrow(/Expected a Module for model/);
    const model = new nn.Linear(2, 3);
    expect(() => confusionMatrix(model, { length: 0, get: () => [] })).toThrow('confusionMatrix: the dataset is empty');
    const bad = new TensorDataset(tensor([[0, 1], [1, 0]], { dtype: 'float32' }), tensor([0, 7]));
    expect(() => confusionMatrix(model, bad)).toThrow("confusionMatrix: sample 1 has label 7, outside the model's 3 classes");
  });

  test('npm run train: --report with --no-report, or into a missing folder, exits 2 before training', () => {
    const both = run(['--report', 'r.html', '--no-report']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--report and --no-report contradict each other/);
    const missing = run(['--limit', '100', '--epochs', '1', '--report', '/nonexistent-dir/r.html']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--report: the folder \/nonexistent-dir does not exist/);
    expect(missing.stdout).not.toMatch(/Epoch/);
  });
});

describe('report', () => {
  test('grayPng: nearest-neighbour scaling, grey levels and a diverging map centred on zero', () => {
    const g = PNG.sync.read(grayPng([0, 0.5, 1, 2], 2, 2, { scale: 3, min: 0, max: 1 }));
    expect([g.width, g.height]).toEqual([6, 6]);
    const px = (p: PNG, x: number, y: number) => [...p.data.subarray((y * p.width + x) * 4, (y * p.width + x) * 4 + 4)];
    expect(px(g, 0, 0)).toEqual([0, 0, 0, 255]);
    expect(px(g, 2, 2)).toEqual([0, 0, 0, 255]); // still the first pixel at 3x
    expect(px(g, 3, 0)).toEqual([128, 128, 128, 255]);
    expect(px(g, 5, 5)).toEqual([255, 255, 255, 255]); // 2 clamps to max
    const d = PNG.sync.read(grayPng([-2, 0, 1, 2], 4, 1, { diverging: true }));
    const [neg, zero, , pos] = [0, 1, 2, 3].map((x) => px(d, x, 0));
    expect(neg[2]).toBeGreaterThan(neg[0]); // blue
    expect(zero).toEqual([247, 247, 247, 255]); // white at 0
    expect(pos[0]).toBeGreaterThan(pos[2]); // red
  });

  test('confusionMatrix: rows sum to the class counts, the trace matches evaluate(), no random draws', async () => {
    const { model } = await tiny();
    const test = new datasets.MNIST({ train: false, limit: 500 });
    const rng = defaultGenerator.getState();
    const cm = confusionMatrix(model, test);
    expect((defaultGenerator.getState() as Tensor).equal(rng as Tensor)).toBe(true);
    const labels = Array.from(test.targets.toTypedArray() as BigInt64Array, Number);
    const counts = Array.from({ length: 10 }, (_, c) => labels.filter((l) => l === c).length);
    expect(cm.numClasses).toBe(10);
    expect(cm.total).toBe(500);
    expect(cm.matrix.map((r) => r.reduce((a, b) => a + b, 0))).toEqual(counts);
    const trace = cm.matrix.reduce((a, r, i) => a + r[i], 0);
    expect(cm.correct).toBe(trace);
    expect(cm.accuracy).toBe(evaluate(model, test));
    expect(cm.perClass.map((p) => p.count)).toEqual(counts);
    expect(cm.misclassified).toHaveLength(500 - trace);
    for (const m of cm.misclassified) {
      expect(m.label).toBe(labels[m.index]);
      expect(m.predicted).not.toBe(m.label);
      expect(m.confidence).toBeGreaterThan(0);
    }
    expect(model.training).toBe(true);
    // A dataset without tensors goes through a DataLoader (batches of 64) to the same counts.
    const plain = { length: test.length, get: (i: number) => test.get(i) };
    const viaLoader = confusionMatrix(model, plain, { batchSize: 64 });
    expect(viaLoader.matrix).toEqual(cm.matrix);
    expect(viaLoader.misclassified.map((m) => m.index)).toEqual(cm.misclassified.map((m) => m.index));
    expect((defaultGenerator.getState() as Tensor).equal(rng as Tensor)).toBe(true);
  });

  test('buildReport on a tiny training: self-contained, valid PNGs, charts, kernels, feature maps, escaped', async () => {
    const { model, history, batchLosses, accuracy } = await tiny();
    const testData = new datasets.MNIST({ train: false, limit: 200 });
    const hostile = '<script>alert("x")</script> & co';
    const data = collectReportData({
      model, history, batchLosses, accuracy, testData,
      options: { dataRoot: hostile, seed: 0, epochs: 1, batchSize: 100, lr: 0.01, threads: 1, device: 'cpu', seconds: 1.5 },
    });
    const html = buildReport(data);
    // Nothing loads from the network, and no scripts at all (the hostile string is text).
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co');
    expect(html).not.toMatch(/\bNaN\b|undefined/);
    expect(html.length).toBeLessThan(3e6);
    expect(html).toMatch(/^<!DOCTYPE html>/);

    // Charts: loss per batch, cost per epoch, accuracy per digit, each with <title> and aria-labelledby.
    const svgs = html.match(/<svg [^>]*>/g)!;
    expect(svgs).toHaveLength(3);
    for (const id of ['chart-batch', 'chart-epoch', 'chart-accuracy']) {
      expect(html).toContain(`aria-labelledby="${id}-t ${id}-d"`);
      expect(html).toContain(`<title id="${id}-t">`);
    }
    expect(html).toContain('Training loss per batch');
    expect(html).toContain('Cost per epoch');
    expect(html).toContain('Test accuracy per digit');

    // Images: misclassified digits, 32 kernels, and per digit the input plus 32 + 64 maps.
    const cm = data.confusion!;
    expect(cm.total).toBe(200);
    const shown = Math.min(60, cm.misclassified.length);
    expect(data.misclassified).toHaveLength(shown);
    expect(data.featureMaps).toHaveLength(4);
    expect(new Set(data.featureMaps.map((d) => d.label)).size).toBe(4);
    expect(data.featureMaps[0].maps.map((m) => [m.name, ...m.shape])).toEqual([['layer1', 32, 14, 14], ['layer2', 64, 7, 7]]);
    const pngs = images(html);
    expect(html.match(/<img /g)).toHaveLength(pngs.length);
    expect(pngs).toHaveLength(shown + 32 + 4 * (1 + 32 + 64));
    const sizes = new Map<string, number>();
    for (const p of pngs) sizes.set(`${p.width}x${p.height}`, (sizes.get(`${p.width}x${p.height}`) ?? 0) + 1);
    expect(Object.fromEntries(sizes)).toEqual({ '84x84': shown, '48x48': 32, '112x112': 4, '56x56': 4 * 96 });
    expect(html.match(/class="kernels[^"]*"/g)).toHaveLength(1);
    expect(html.match(/32 maps of 14×14/g)).toHaveLength(5); // the sentence and 4 digits
    expect(html.match(/64 maps of 7×7/g)).toHaveLength(5);

    // Confusion matrix, model summary and settings.
    expect(html).toContain('Confusion matrix');
    expect(html).toContain('333,526');
    expect(html).toContain('(3×3)×(1×32) + 32');
    expect(html).toContain(`${(accuracy! * 100).toFixed(2)} %`);
    expect(html).toContain('libtorch');

    // writeReport writes the same page atomically.
    const dir = tmpdir();
    const out = writeReport(path.join(dir, 'r.html'), data);
    expect(out.path).toBe(path.join(dir, 'r.html'));
    expect(fs.readFileSync(out.path, 'utf8')).toBe(html);
    expect(out.bytes).toBe(Buffer.byteLength(html));
    expect(fs.readdirSync(dir)).toEqual(['r.html']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('buildReport with every section empty is still a page', () => {
    const html = buildReport(emptyData());
    expect(html).toContain('<title>empty</title>');
    expect(html).toContain('No training batches were recorded');
    expect(html).not.toMatch(/<img|NaN|undefined/);
  });

  test('npm run train writes model.report.html next to --save and prints its path; --no-report writes none', () => {
    const dir = tmpdir();
    const common = ['--seed', '0', '--limit', '300', '--epochs', '1', '--threads', '1', '--test-limit', '200', '--no-progress'];
    const saved = run([...common, '--save', path.join(dir, 'm.pt')], dir);
    expect(saved.stderr).toBe('');
    expect(saved.status).toBe(0);
    const report = path.join(dir, 'm.report.html');
    expect(saved.stdout.trim().split('\n').pop()).toBe(`Report: ${report}`);
    const html = fs.readFileSync(report, 'utf8');
    expect(html).toContain('333,526');
    expect(images(html).length).toBeGreaterThan(32 + 4 * 97);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.pt', 'm.report.html']);

    const none = run([...common, '--no-report'], dir);
    expect(none.status).toBe(0);
    expect(none.stdout).not.toMatch(/Report:/);
    expect(fs.readdirSync(dir).sort()).toEqual(['m.pt', 'm.report.html']);

    // Without --save the report goes to the current directory.
    const plain = run(common, dir);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toContain('Report: torchnode-report.html');
    expect(fs.existsSync(path.join(dir, 'torchnode-report.html'))).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120000);
});
