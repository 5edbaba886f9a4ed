/** Types for server.js (the example is plain CommonJS so `npm run serve` needs no compile step). */
import type { Server } from 'node:http';

export interface ServiceOptions {
  /** Where models are saved as `<name>.pt` (created if missing). Default `examples/service/data`. */
  dataDir?: string;
  /** Training jobs running at once; more get 429 with Retry-After (invalid options are 400 first). Default `TORCHNODE_MAX_JOBS`, else 2. */
  maxRunningJobs?: number;
  /** Batch events each job keeps for SSE replay (every epoch event is kept). Default 1000. */
  maxBatchEvents?: number;
  /**
   * Host header names (or `name:port`; IPv6 in brackets) accepted besides `localhost`
   * and loopback IPs; `'*'` accepts any. Added to `TORCHNODE_ALLOWED_HOSTS` (comma-separated).
   * Any other Host gets 403 `forbidden_host` (DNS rebinding).
   */
  allowedHosts?: string[];
  /**
   * Origins (`scheme://host[:port]`) that may send POST and DELETE besides the service's
   * own; `'*'` accepts any. Added to `TORCHNODE_ALLOWED_ORIGINS`. Others get 403 `cross_origin`.
   */
  allowedOrigins?: string[];
  /**
   * The access token (at least 8 characters), sent as `Authorization: Bearer <token>` or
   * `?token=`. Default `TORCHNODE_TOKEN`; an explicit token is required on every address.
   * Without one a token is generated and required only when listening off loopback.
   * `false`: no token, even off loopback.
   */
  token?: string | false;
  /** Request body limit in bytes; larger bodies get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Finished jobs kept for GET /jobs. Default 100. */
  maxFinishedJobs?: number;
  /** Models loaded from DATA_DIR kept in memory. Default 8. */
  modelCacheSize?: number;
  /** Interval of SSE keep-alive comments. Default 15000. */
  heartbeatMs?: number;
  /**
   * When no request has been open for this long and no job is training, the freed
   * memory glibc keeps is given back to the system (`torch.releaseMemory()`). Default 1000; 0: never.
   */
  idleReleaseMs?: number;
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
  listen(port?: number, host?: string): Promise<{ port: number; host: string; url: string; token: string | null }>;
  /** The token requests must carry, or null when none is needed. */
  readonly token: string | null;
  /** Cancels running jobs and waits for their threads, ends SSE streams, closes the server. */
  close(): Promise<void>;
}

export function createServer(options?: ServiceOptions): Service;
