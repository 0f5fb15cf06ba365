import type { IncomingMessage, ServerResponse } from 'node:http';
import { countMessageTokens, handleMessages } from './anthropic-messages.js';
import type { CallContext, CallResult, JsonObject } from './context.js';
import { isObject } from './context.js';
import type { Directives } from './directives.js';
import { parseDirectiveList, parseDirectivesFromText } from './directives.js';
import type { FailureSettings } from './failures.js';
import { failureHeaders, failureMessage, pickFailure, streamErrorFrame } from './failures.js';
import type { ErrorShape } from './http-util.js';
import { writeJson } from './http-util.js';
import { JUDGE_PROMPT_MARKER } from './judge.js';
import type { SimJudgeConfig } from './judge.js';
import type { ModelRegistry, ModelState } from './model-registry.js';
import { handleChatCompletions } from './openai-chat.js';
import { handleEmbeddings } from './openai-embeddings.js';
import { handleResponses } from './openai-responses.js';
import type { Random } from './random.js';
import type { Responder, StreamCut } from './responder.js';

/** The POST paths that carry a JSON request body. */
export const POST_PATHS: ReadonlySet<string> = new Set([
  '/v1/chat/completions',
  '/v1/responses',
  '/v1/embeddings',
  '/v1/messages',
  '/v1/messages/count_tokens',
]);

export interface DispatcherOptions extends FailureSettings {
  seed: number;
  latencyScale: number;
}

/** One POST request on its way through the steps below. */
interface Call {
  path: string;
  shape: ErrorShape;
  response: ServerResponse;
  requestId: string;
}

function lognormal(random: Random, median: number, sigma: number): number {
  if (median <= 0) return 0;
  return sigma > 0 ? median * Math.exp(sigma * random.normal()) : median;
}

/**
 * Answers the POST endpoints: parses the body, finds the model, reads the directives, fails the
 * call when a directive or the model's failure rates say so, runs the provider handler and sends
 * its answer paced by the model's latency.
 */
export class Dispatcher {
  private generations = 0;
  private readonly options: DispatcherOptions;
  private readonly registry: ModelRegistry;
  private readonly responder: Responder;
  private readonly judge: () => SimJudgeConfig;

  constructor(
    options: DispatcherOptions,
    registry: ModelRegistry,
    responder: Responder,
    judge: () => SimJudgeConfig,
  ) {
    this.options = options;
    this.registry = registry;
    this.responder = responder;
    this.judge = judge;
  }

  dispatch(
    path: string,
    request: IncomingMessage,
    response: ServerResponse,
    rawBody: string,
    requestId: string,
  ): void {
    const shape: ErrorShape = path.startsWith('/v1/messages') ? 'anthropic' : 'openai';
    const call: Call = { path, shape, response, requestId };
    const body = this.parseBody(call, rawBody);
    if (!body) return;
    if (path === '/v1/messages/count_tokens') {
      writeJson(response, 200, countMessageTokens(body));
      return;
    }
    const state = this.resolveModel(call, body);
    if (!state) return;
    const generation = ++this.generations;
    const directives = directivesOf(request, rawBody);
    if (this.failed(call, state, directives, rawBody)) return;
    const result = this.run(call, state, body, { directives, generation });
    if (result) this.deliver(call, state, directives, result);
  }

  private error(
    call: Call,
    status: number,
    message?: string,
    details?: { param?: string | null; code?: string | null },
    headers?: Record<string, string>,
  ): void {
    this.responder.sendError(
      call.response,
      call.shape,
      status,
      call.requestId,
      message,
      details,
      headers,
    );
  }

  private parseBody(call: Call, rawBody: string): JsonObject | undefined {
    try {
      const parsed: unknown = JSON.parse(rawBody);
      if (isObject(parsed)) return parsed;
    } catch {
      // answered below
    }
    this.error(call, 400, 'We could not parse the JSON body of your request.');
    return undefined;
  }

  /** The model the body names, if it exists and serves this endpoint (counted as a request). */
  private resolveModel(call: Call, body: JsonObject): ModelState | undefined {
    const anthropic = call.shape === 'anthropic';
    const modelName = body['model'];
    if (typeof modelName !== 'string' || modelName === '') {
      const message = anthropic ? 'model: Field required' : 'you must provide a model parameter';
      this.error(call, 400, message, { param: 'model', code: null });
      return undefined;
    }
    const state = this.registry.lookup(modelName);
    if (!state) {
      const message = anthropic
        ? `model: ${modelName}`
        : `The model \`${modelName}\` does not exist or you do not have access to it.`;
      this.error(call, 404, message, { param: null, code: 'model_not_found' });
      return undefined;
    }
    state.stats.requests++;
    if ((state.config.kind === 'embedding') !== (call.path === '/v1/embeddings')) {
      state.stats.errors++;
      const message = `The model \`${modelName}\` does not support this endpoint.`;
      this.error(call, 400, message, { param: 'model', code: null });
      return undefined;
    }
    return state;
  }

  /** Answers with a failure when one is due; says whether it did. */
  private failed(call: Call, state: ModelState, directives: Directives, rawBody: string): boolean {
    const failure = pickFailure(directives, state, rawBody, this.options);
    if (!failure) return false;
    state.stats.errors++;
    if ('timeout' in failure) {
      this.responder.later(call.response, failure.timeout, () => this.error(call, 504));
      return true;
    }
    const { status } = failure;
    const model = state.config;
    const headers = failureHeaders(status, directives, model, call.shape);
    const message = failureMessage(status, directives, model, call.shape);
    this.error(call, status, message, undefined, headers);
    return true;
  }

  /** Runs the provider handler; undefined when it failed (and the error was sent). */
  private run(
    call: Call,
    state: ModelState,
    body: JsonObject,
    { directives, generation }: { directives: Directives; generation: number },
  ): Exclude<CallResult, { kind: 'error' }> | undefined {
    const { seed } = this.options;
    const context: CallContext = {
      model: state.config,
      seed,
      salt: `${seed}:${generation}`,
      directives,
      cache: state.cache,
      judge: this.judge(),
      created: Math.floor(Date.now() / 1000),
    };
    let result: CallResult;
    try {
      result = HANDLERS[call.path as keyof typeof HANDLERS](body, context);
    } catch (error) {
      state.stats.errors++;
      const reason = error instanceof Error ? error.message : String(error);
      this.error(call, 500, `simulator error: ${reason}`);
      return undefined;
    }
    if (result.kind === 'error') {
      state.stats.errors++;
      const details = { param: result.param ?? null, code: result.code ?? null };
      this.error(call, result.status, result.message, details);
      return undefined;
    }
    if (result.graded) {
      state.stats.correct += result.graded.correct;
      state.stats.wrong += result.graded.wrong;
    }
    return result;
  }

  /** Sends the answer after the model's time to first token and per-token time. */
  private deliver(
    call: Call,
    state: ModelState,
    directives: Directives,
    result: Exclude<CallResult, { kind: 'error' }>,
  ): void {
    const { latency } = state.config;
    let firstMs = directives.slowFirstMs ?? 0;
    let perTokenMs = 0;
    const scale = state.latencyExplicit ? 1 : this.options.latencyScale;
    if (scale > 0) {
      firstMs += scale * lognormal(state.random, latency.ttftMs, latency.sigma);
      perTokenMs = scale * lognormal(state.random, latency.perTokenMs, latency.sigma / 2);
    }
    const { response } = call;
    if (result.kind === 'json') {
      const delay = firstMs + perTokenMs * result.outputTokens;
      this.responder.later(response, delay, () => writeJson(response, 200, result.body));
      return;
    }
    let cut: StreamCut | undefined;
    if (directives.streamError || directives.abort || directives.endEarly) {
      const after = directives.abortAfter ?? Math.ceil(result.frames.length / 2);
      const errorFrame = directives.streamError ? streamErrorFrame(call.path, after) : undefined;
      const clean = directives.endEarly === true && !directives.streamError;
      cut = { after, errorFrame, ...(clean ? { clean } : {}) };
    }
    this.responder.sendSse(response, result.frames, firstMs, perTokenMs, cut);
  }
}

const HANDLERS = {
  '/v1/chat/completions': handleChatCompletions,
  '/v1/responses': handleResponses,
  '/v1/embeddings': handleEmbeddings,
  '/v1/messages': handleMessages,
} satisfies Record<string, (body: JsonObject, context: CallContext) => CallResult>;

/** Directives from the `x-sim-directives` header, then from the prompt text. */
function directivesOf(request: IncomingMessage, rawBody: string): Directives {
  let directives: Directives = {};
  const header = request.headers['x-sim-directives'];
  if (typeof header === 'string') directives = parseDirectiveList(header, directives);
  // A judge prompt quotes the judged call's question, directives included: those were meant
  // for that call, so a judge request takes its directives from the header only.
  if (!rawBody.includes(JUDGE_PROMPT_MARKER)) {
    directives = parseDirectivesFromText(rawBody, directives) ?? directives;
  }
  return directives;
}
