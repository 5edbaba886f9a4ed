/** Types for server.js (the example is plain CommonJS so `npm run serve` needs no compile step). */
import type { Server } from 'node:http';

export interface ServiceOptions {
  /** Where models are saved as `<name>.pt` (created if missing). Default `examples/service/data`. */
  dataDir?: string;
  /** Training jobs running at once; more get 429 with Retry-After. Default 2. */
  maxRunningJobs?: number;
  /** Request body limit in bytes; larger bodies get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Finished jobs kept for GET /jobs. Default 100. */
  maxFinishedJobs?: number;
  /** Models loaded from DATA_DIR kept in memory. Default 8. */
  modelCacheSize?: number;
  /** Interval of SSE keep-alive comments. Default 15000. */
  heartbeatMs?: number;
  /** Receives one line per job start/end and per 500. Default: silent. */
  log?: (line: string) => void;
  /**
   * Folder served at `GET /` (index.html) and `GET /<file>` (html, js, css, svg, png,
   * ico, json, txt only; never outside the folder). Default `examples/service/public`;
   * `null` serves no files.
   */
  publicDir?: string | null;
}

export interface Service {
  server: Server;
  /** Listens (default port 0 = any free port, host 127.0.0.1) and resolves with the address. */
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string }>;
  /** Cancels running jobs and waits for their threads, ends SSE streams, closes the server. */
  close(): Promise<void>;
}

export function createServer(options?: ServiceOptions): Service;
