import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Dispatcher } from './dispatch.js';
import { DEFAULT_SIM_JUDGE, mergeJudgeConfig } from './judge.js';
import type { SimJudgeConfig } from './judge.js';
import { ModelRegistry } from './model-registry.js';
import type { SimModelStats } from './model-registry.js';
import type { SimModel, SimModelConfig, SimModelPatch } from './models.js';
import { DEFAULT_SIM_MODELS } from './models.js';
import { Responder } from './responder.js';
import { SimRoutes } from './routes.js';

export interface LlmSimOptions {
  /** Port (default 0: any free port). */
  port?: number;
  /** Host (default 127.0.0.1). */
  host?: string;
  /** Seed for ids, answers, latency and failures (default 1). */
  seed?: number;
  /** Multiplier on every model's latency; 0 (the default) answers with no delay at all. */
  latencyScale?: number;
  /** Multiplier on every model's random failure rates; 0 (the default) disables random failures. */
  failureScale?: number;
  /** How long a simulated timeout holds the response before answering 504 (default 30 s). */
  timeoutHoldMs?: number;
  /** The models to simulate (default `DEFAULT_SIM_MODELS`). */
  models?: SimModelConfig[];
  /**
   * How every chat model answers judge prompts (`modelmaxx-judge/v1`, see `judge.ts`): accuracy,
   * position and length bias, malformed replies. Default `DEFAULT_SIM_JUDGE` (accuracy 0.9, no bias).
   */
  judge?: Partial<SimJudgeConfig>;
}

export interface LlmSim {
  /** `http://HOST:PORT` */
  url: string;
  /** `url + '/v1'` (for `new OpenAI({ baseURL })`). */
  openaiBaseURL: string;
  /** `url` (for `new Anthropic({ baseURL })`). */
  anthropicBaseURL: string;
  port: number;
  models(): SimModel[];
  /**
   * Changes a model at run time (failure rates, quality drift, latency, ...). Failure rates and
   * latency set here apply as given (scale 1), whatever `failureScale` / `latencyScale` say.
   */
  setModel(name: string, patch: SimModelPatch): void;
  /** Adds (or replaces) a model. */
  addModel(config: SimModelConfig): void;
  /** Changes how judge prompts are answered from the next request on (values from 0 to 1). */
  setJudge(patch: Partial<SimJudgeConfig>): void;
  /** The judge settings in use. */
  judge(): SimJudgeConfig;
  /** HTTP requests received (all paths, including errors). */
  requestCount(): number;
  /** Per-model counters of generation requests. */
  stats(): Record<string, SimModelStats>;
  close(): Promise<void>;
}

/** Starts the simulator on loopback. */
export async function startLlmSim(options: LlmSimOptions = {}): Promise<LlmSim> {
  const seed = options.seed ?? 1;
  const host = options.host ?? '127.0.0.1';
  let judge = mergeJudgeConfig(DEFAULT_SIM_JUDGE, options.judge);
  const registry = new ModelRegistry(seed);
  for (const config of options.models ?? DEFAULT_SIM_MODELS) registry.add(config);
  const responder = new Responder();
  const dispatcher = new Dispatcher(
    {
      seed,
      latencyScale: options.latencyScale ?? 0,
      failureScale: options.failureScale ?? 0,
      timeoutHoldMs: options.timeoutHoldMs ?? 30_000,
      failTimes: new Map(),
    },
    registry,
    responder,
    () => judge,
  );
  const routes = new SimRoutes({ seed, registry, responder, dispatcher });
  const { port, close } = await listen(routes.handle, options.port ?? 0, host, () =>
    responder.cancelAll(),
  );
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    openaiBaseURL: `${url}/v1`,
    anthropicBaseURL: url,
    port,
    models: () => registry.snapshot(),
    setModel: (name, patch) => registry.patch(name, patch),
    addModel: (config) => registry.add(config),
    setJudge(patch) {
      judge = mergeJudgeConfig(judge, patch);
    },
    judge: () => ({ ...judge }),
    requestCount: () => routes.requests,
    stats: () => registry.stats(),
    close,
  };
}

/**
 * Listens on `host:port` (keep-alive, no Nagle); `close()` (idempotent) runs `beforeClose`, stops
 * accepting and drops open connections.
 */
async function listen(
  handle: Parameters<typeof createServer>[1],
  port: number,
  host: string,
  beforeClose: () => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ keepAliveTimeout: 10_000 }, handle);
  server.on('connection', (socket: Socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      beforeClose();
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
    });
    return closing;
  };
  return { port: (server.address() as AddressInfo).port, close };
}
