import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { countMessageTokens, handleMessages } from './anthropic-messages.js';
import type { CallContext, CallResult, JsonObject } from './context.js';
import { isObject } from './context.js';
import type { Directives } from './directives.js';
import { parseDirectiveList, parseDirectivesFromText } from './directives.js';
import { PrefixCache } from './engine.js';
import type { ErrorShape, SseFrame } from './http-util.js';
import { DEFAULT_SIM_JUDGE, JUDGE_PROMPT_MARKER, mergeJudgeConfig } from './judge.js';
import type { SimJudgeConfig } from './judge.js';
import { errorBody, readBody, writeJson } from './http-util.js';
import type { SimModel, SimModelConfig, SimModelPatch } from './models.js';
import { DEFAULT_SIM_MODELS, applyPatch, cloneModel } from './models.js';
import { handleChatCompletions } from './openai-chat.js';
import { handleEmbeddings } from './openai-embeddings.js';
import { handleResponses } from './openai-responses.js';
import { Random, hashParts, hashString } from './random.js';

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

/** Per-model counters. */
export interface SimModelStats {
  requests: number;
  errors: number;
  /** Answers to recognised tasks that were right / wrong. */
  correct: number;
  wrong: number;
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

interface ModelState {
  config: SimModelConfig;
  /** Failure rates were set with setModel: they apply as given, whatever `failureScale` says. */
  failureExplicit: boolean;
  /** Latency was set with setModel: it applies as given (scale 1), whatever `latencyScale` says. */
  latencyExplicit: boolean;
  random: Random;
  cache: PrefixCache;
  stats: SimModelStats;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** The error a provider sends inside an open stream. */
function streamErrorFrame(path: string, sequence: number): string {
  if (path === '/v1/messages') {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })}\n\n`;
  }
  const message = 'The server had an error while processing your request. Sorry about that!';
  if (path === '/v1/responses') {
    return `event: error\ndata: ${JSON.stringify({ type: 'error', code: 'server_error', message, param: null, sequence_number: sequence })}\n\n`;
  }
  return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code: null } })}\n\n`;
}

function lognormal(random: Random, median: number, sigma: number): number {
  if (median <= 0) return 0;
  return sigma > 0 ? median * Math.exp(sigma * random.normal()) : median;
}

/** Starts the simulator on loopback. */
export async function startLlmSim(options: LlmSimOptions = {}): Promise<LlmSim> {
  const seed = options.seed ?? 1;
  const latencyScale = options.latencyScale ?? 0;
  const failureScale = options.failureScale ?? 0;
  const timeoutHoldMs = options.timeoutHoldMs ?? 30_000;
  const host = options.host ?? '127.0.0.1';
  let judge = mergeJudgeConfig(DEFAULT_SIM_JUDGE, options.judge);
  const models = new Map<string, ModelState>();
  const aliases = new Map<string, string>();
  const addModel = (config: SimModelConfig): void => {
    const copy = cloneModel(config);
    models.set(copy.name, {
      config: copy,
      failureExplicit: false,
      latencyExplicit: false,
      random: new Random(hashParts('model', seed, copy.name)),
      cache: new PrefixCache(),
      stats: { requests: 0, errors: 0, correct: 0, wrong: 0 },
    });
    if (copy.responseModel && copy.responseModel !== copy.name)
      aliases.set(copy.responseModel, copy.name);
  };
  for (const config of options.models ?? DEFAULT_SIM_MODELS) addModel(config);
  const lookup = (name: string): ModelState | undefined => {
    const direct = models.get(name);
    if (direct) return direct;
    const alias = aliases.get(name);
    return alias === undefined ? undefined : models.get(alias);
  };

  let requests = 0;
  let generations = 0;
  const failTimes = new Map<number, number>();
  const timers = new Set<NodeJS.Timeout>();
  const sockets = new Set<Socket>();

  /** Runs `fn` after `ms` (synchronously when 0); cancelled if the response closes first. */
  const later = (response: ServerResponse, ms: number, fn: () => void): void => {
    if (ms <= 0) {
      fn();
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      response.off('close', cancel);
      fn();
    }, ms);
    const cancel = (): void => {
      clearTimeout(timer);
      timers.delete(timer);
    };
    timers.add(timer);
    response.once('close', cancel);
  };

  const requestIdOf = (index: number): string =>
    `req_${hashParts('request', seed, index).toString(16).padStart(8, '0')}${hashParts('request2', seed, index).toString(16).padStart(8, '0')}${hashParts('request3', seed, index).toString(16).padStart(8, '0')}`;

  const sendError = (
    response: ServerResponse,
    shape: ErrorShape,
    status: number,
    requestId: string,
    message?: string,
    details?: { param?: string | null; code?: string | null },
    headers?: Record<string, string>,
  ): void => {
    writeJson(response, status, errorBody(shape, status, requestId, message, details), headers);
  };

  /**
   * Streams SSE frames. Each frame waits for the tokens it carries (`perTokenMs` each); the first
   * one also waits `firstMs`. Frames without tokens go out with the one before them.
   * `cut` ends the stream early: after `cut.after` frames, with an error frame or a dropped connection.
   */
  const sendSse = (
    response: ServerResponse,
    frames: SseFrame[],
    firstMs: number,
    perTokenMs: number,
    cut: { after: number; errorFrame: string | undefined } | undefined,
  ): void => {
    if (response.destroyed) return;
    let list = frames;
    if (cut) {
      list = frames.slice(0, Math.min(cut.after, frames.length));
      if (cut.errorFrame !== undefined) list.push({ text: cut.errorFrame, tokens: 0 });
    }
    const finish = (): void => {
      if (cut && cut.errorFrame === undefined) response.destroy();
      else response.end();
    };
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    if (firstMs <= 0 && perTokenMs <= 0) {
      let all = '';
      for (const frame of list) all += frame.text;
      if (cut && cut.errorFrame === undefined) {
        response.write(all, () => response.destroy());
      } else {
        response.end(all);
      }
      return;
    }
    response.flushHeaders();
    let index = 0;
    const step = (): void => {
      if (response.destroyed) return;
      let batch = (list[index++] as SseFrame).text;
      while (index < list.length && (list[index] as SseFrame).tokens === 0)
        batch += (list[index++] as SseFrame).text;
      if (index >= list.length) {
        response.write(batch, finish);
        return;
      }
      response.write(batch);
      later(response, perTokenMs * (list[index] as SseFrame).tokens, step);
    };
    if (list.length === 0) {
      finish();
      return;
    }
    later(response, firstMs + perTokenMs * (list[0] as SseFrame).tokens, step);
  };

  const dispatch = (
    path: string,
    request: IncomingMessage,
    response: ServerResponse,
    rawBody: string,
    requestId: string,
  ): void => {
    const shape: ErrorShape = path.startsWith('/v1/messages') ? 'anthropic' : 'openai';
    let body: JsonObject;
    try {
      const parsed: unknown = JSON.parse(rawBody);
      if (!isObject(parsed)) throw new TypeError('not an object');
      body = parsed;
    } catch {
      sendError(
        response,
        shape,
        400,
        requestId,
        'We could not parse the JSON body of your request.',
      );
      return;
    }
    if (path === '/v1/messages/count_tokens') {
      writeJson(response, 200, countMessageTokens(body));
      return;
    }
    const modelName = body['model'];
    if (typeof modelName !== 'string' || modelName === '') {
      sendError(
        response,
        shape,
        400,
        requestId,
        shape === 'anthropic' ? 'model: Field required' : 'you must provide a model parameter',
        { param: 'model', code: null },
      );
      return;
    }
    const state = lookup(modelName);
    if (!state) {
      sendError(
        response,
        shape,
        404,
        requestId,
        shape === 'anthropic'
          ? `model: ${modelName}`
          : `The model \`${modelName}\` does not exist or you do not have access to it.`,
        { param: null, code: 'model_not_found' },
      );
      return;
    }
    const model = state.config;
    state.stats.requests++;
    const wantsEmbedding = path === '/v1/embeddings';
    if ((model.kind === 'embedding') !== wantsEmbedding) {
      state.stats.errors++;
      sendError(
        response,
        shape,
        400,
        requestId,
        `The model \`${modelName}\` does not support this endpoint.`,
        { param: 'model', code: null },
      );
      return;
    }
    const generation = ++generations;

    let directives: Directives = {};
    const header = request.headers['x-sim-directives'];
    if (typeof header === 'string') directives = parseDirectiveList(header, directives);
    // A judge prompt quotes the judged call's question, directives included: those were meant
    // for that call, so a judge request takes its directives from the header only.
    if (!rawBody.includes(JUDGE_PROMPT_MARKER)) {
      directives = parseDirectivesFromText(rawBody, directives) ?? directives;
    }

    // Failures: directives first, then the model's random rates.
    let failure: { status: number } | { timeout: number } | undefined;
    if (directives.status !== undefined || directives.timeout) {
      let apply = true;
      if (directives.times !== undefined) {
        const key = hashString(rawBody);
        const count = failTimes.get(key) ?? 0;
        apply = count < directives.times;
        failTimes.set(key, count + 1);
      }
      if (apply) {
        failure = directives.timeout
          ? { timeout: directives.timeoutMs ?? timeoutHoldMs }
          : { status: directives.status as number };
      }
    } else if (failureScale > 0 || state.failureExplicit) {
      const scale = state.failureExplicit ? 1 : failureScale;
      const draw = state.random.next();
      const { rate429, rate500, rateTimeout } = model.failure;
      if (draw < rate429 * scale) failure = { status: 429 };
      else if (draw < (rate429 + rate500) * scale) failure = { status: 500 };
      else if (draw < (rate429 + rate500 + rateTimeout) * scale)
        failure = { timeout: timeoutHoldMs };
    }
    if (failure) {
      state.stats.errors++;
      if ('timeout' in failure) {
        later(response, failure.timeout, () => sendError(response, shape, 504, requestId));
        return;
      }
      const status = failure.status;
      const headers: Record<string, string> = {};
      if (
        directives.retryAfter !== undefined ||
        status === 429 ||
        status === 503 ||
        status === 529
      ) {
        const retryAfter = directives.retryAfter ?? model.failure.retryAfterSeconds;
        headers['retry-after'] = String(retryAfter);
        if (shape === 'anthropic') {
          headers['anthropic-ratelimit-requests-limit'] = '1000';
          headers['anthropic-ratelimit-requests-remaining'] = '0';
          headers['anthropic-ratelimit-requests-reset'] = new Date(
            Date.now() + retryAfter * 1000,
          ).toISOString();
        } else {
          headers['x-ratelimit-limit-requests'] = '10000';
          headers['x-ratelimit-remaining-requests'] = '0';
          headers['x-ratelimit-reset-requests'] = `${retryAfter}s`;
        }
      }
      const message =
        status === 429 && shape === 'openai'
          ? `Rate limit reached for ${model.name} in organization org-sim on requests per min (RPM): Limit 10000, Used 10000, Requested 1. Please try again in ${directives.retryAfter ?? model.failure.retryAfterSeconds}s.`
          : undefined;
      sendError(response, shape, status, requestId, message, undefined, headers);
      return;
    }

    const context: CallContext = {
      model,
      seed,
      salt: `${seed}:${generation}`,
      directives,
      cache: state.cache,
      judge,
      created: Math.floor(Date.now() / 1000),
    };
    let result: CallResult;
    try {
      if (path === '/v1/chat/completions') result = handleChatCompletions(body, context);
      else if (path === '/v1/responses') result = handleResponses(body, context);
      else if (path === '/v1/embeddings') result = handleEmbeddings(body, context);
      else result = handleMessages(body, context);
    } catch (error) {
      state.stats.errors++;
      sendError(
        response,
        shape,
        500,
        requestId,
        `simulator error: ${error instanceof Error ? error.message : String(error)}`,
      );
      return;
    }
    if (result.kind === 'error') {
      state.stats.errors++;
      sendError(response, shape, result.status, requestId, result.message, {
        param: result.param ?? null,
        code: result.code ?? null,
      });
      return;
    }
    if (result.graded) {
      state.stats.correct += result.graded.correct;
      state.stats.wrong += result.graded.wrong;
    }
    let firstMs = directives.slowFirstMs ?? 0;
    let perTokenMs = 0;
    const scale = state.latencyExplicit ? 1 : latencyScale;
    if (scale > 0) {
      firstMs += scale * lognormal(state.random, model.latency.ttftMs, model.latency.sigma);
      perTokenMs =
        scale * lognormal(state.random, model.latency.perTokenMs, model.latency.sigma / 2);
    }
    if (result.kind === 'json') {
      const delay = firstMs + perTokenMs * result.outputTokens;
      const payload = result.body;
      later(response, delay, () => writeJson(response, 200, payload));
    } else {
      let cut: { after: number; errorFrame: string | undefined } | undefined;
      if (directives.streamError || directives.abort) {
        const after = directives.abortAfter ?? Math.ceil(result.frames.length / 2);
        cut = {
          after,
          errorFrame: directives.streamError ? streamErrorFrame(path, after) : undefined,
        };
      }
      sendSse(response, result.frames, firstMs, perTokenMs, cut);
    }
  };

  const handle = (request: IncomingMessage, response: ServerResponse): void => {
    const index = ++requests;
    const requestId = requestIdOf(index);
    response.setHeader('x-request-id', requestId);
    response.setHeader('request-id', requestId);
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    let path = query < 0 ? url : url.slice(0, query);
    if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
    if (!path.startsWith('/v1/')) path = `/v1${path}`;
    const shape: ErrorShape =
      path.startsWith('/v1/messages') || request.headers['anthropic-version'] !== undefined
        ? 'anthropic'
        : 'openai';

    if (request.method === 'GET') {
      if (path === '/v1/models') {
        writeJson(response, 200, modelList(shape));
        return;
      }
      if (path.startsWith('/v1/models/')) {
        const state = lookup(decodeURIComponent(path.slice('/v1/models/'.length)));
        if (state) writeJson(response, 200, modelEntry(state.config, shape));
        else
          sendError(response, shape, 404, requestId, `The model does not exist.`, {
            code: 'model_not_found',
          });
        return;
      }
      if (path === '/v1/healthz' || path === '/v1/health') {
        writeJson(response, 200, { status: 'ok' });
        return;
      }
    }
    if (
      request.method === 'POST' &&
      (path === '/v1/chat/completions' ||
        path === '/v1/responses' ||
        path === '/v1/embeddings' ||
        path === '/v1/messages' ||
        path === '/v1/messages/count_tokens')
    ) {
      readBody(request, MAX_BODY_BYTES).then(
        (raw) => dispatch(path, request, response, raw, requestId),
        () => sendError(response, shape, 413, requestId, 'Request body too large.'),
      );
      return;
    }
    request.resume();
    sendError(
      response,
      shape,
      404,
      requestId,
      `Unknown request URL: ${request.method ?? 'GET'} ${url}.`,
      { code: 'unknown_url' },
    );
  };

  const modelEntry = (config: SimModelConfig, shape: ErrorShape): JsonObject =>
    shape === 'anthropic'
      ? {
          type: 'model',
          id: config.name,
          display_name: config.name,
          created_at: '2025-01-01T00:00:00Z',
        }
      : { id: config.name, object: 'model', created: 1735689600, owned_by: config.provider };
  const modelList = (shape: ErrorShape): JsonObject => {
    const data = [...models.values()].map((state) => modelEntry(state.config, shape));
    if (shape === 'anthropic') {
      return {
        data,
        has_more: false,
        first_id: (data[0]?.['id'] as string | undefined) ?? null,
        last_id: (data[data.length - 1]?.['id'] as string | undefined) ?? null,
      };
    }
    return { object: 'list', data };
  };

  const server: Server = createServer({ keepAliveTimeout: 10_000 }, handle);
  server.on('connection', (socket: Socket) => {
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url,
    openaiBaseURL: `${url}/v1`,
    anthropicBaseURL: url,
    port,
    models: () => [...models.values()].map((state) => cloneModel(state.config)),
    setModel(name, patch) {
      const state = lookup(name);
      if (!state) throw new RangeError(`llm-sim: unknown model ${name}`);
      state.config = applyPatch(state.config, patch);
      if (patch.failure) state.failureExplicit = true;
      if (patch.latency) state.latencyExplicit = true;
      if (state.config.responseModel && state.config.responseModel !== state.config.name) {
        aliases.set(state.config.responseModel, state.config.name);
      }
    },
    addModel,
    setJudge(patch) {
      judge = mergeJudgeConfig(judge, patch);
    },
    judge: () => ({ ...judge }),
    requestCount: () => requests,
    stats: () => {
      const out: Record<string, SimModelStats> = {};
      for (const [name, state] of models) out[name] = { ...state.stats };
      return out;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
