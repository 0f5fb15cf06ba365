import type { Directives } from './directives.js';
import type { SimModelConfig } from './models.js';
import {
  JUDGE_PROMPT_MARKER,
  MALFORMED_JUDGE_TEXT,
  judgeVerdict,
  parseJudgePrompt,
  verdictHint,
} from './judge.js';
import type { JudgePrompt, SimJudgeConfig } from './judge.js';
import { Random, alphaId, hashParts, hashString, uniformOf } from './random.js';
import { answerHint, recognizeTask, replyForTask, wrongAnswer } from './tasks.js';
import type { SimTask } from './tasks.js';

/** ≈ 4 characters per token, at least 1 for non-empty text. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

export interface ToolSpec {
  name: string;
  parameters: unknown;
}

export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** Provider-neutral view of a generation request. */
export interface GenerationRequest {
  model: SimModelConfig;
  seed: number;
  /** Salt that makes ids unique per request. */
  requestSalt: string;
  /** Text of the last user turn (task recognition, correctness). */
  userText: string;
  /** The conversation ends with a tool result (the model answers instead of calling again). */
  afterToolResult: boolean;
  tools: ToolSpec[];
  toolChoice: ToolChoice;
  /** JSON output was requested; `schema` for structured output. */
  json: { schema: unknown } | undefined;
  maxOutputTokens: number | undefined;
  reasoningEffort: string | undefined;
  /** Extended thinking asked for by the request (Anthropic): reasoning even without a model profile, capped. */
  thinking?: { budgetTokens: number | undefined };
  n: number;
  directives: Directives;
  /** Prefix for tool call ids (`call_` for OpenAI, `toolu_` for Anthropic). */
  toolIdPrefix: string;
  /** How judge prompts are answered (see `judge.ts`); default `DEFAULT_SIM_JUDGE`. */
  judge?: SimJudgeConfig;
}

export interface GeneratedToolCall {
  id: string;
  name: string;
  /** JSON text (may be unparseable with `bad-tool-args` or when cut by `length`). */
  arguments: string;
}

export interface GeneratedChoice {
  text: string;
  refusal: string | undefined;
  toolCalls: GeneratedToolCall[];
  finish: 'stop' | 'length' | 'tool_calls';
  /** Output tokens including reasoning tokens. */
  outputTokens: number;
  reasoningTokens: number;
  task: SimTask | undefined;
  /** Whether the answer to a recognised task is right (undefined for other prompts). */
  correct: boolean | undefined;
  /** A judge prompt's verdict: what the reply says (undefined when malformed) and the truth. */
  judged?: { verdict: Record<string, unknown> | undefined; truth: string };
}

export const REFUSAL_TEXT = "I'm sorry, but I can't help with that request.";

const VOCABULARY = [
  'the',
  'model',
  'answer',
  'request',
  'simulated',
  'response',
  'data',
  'system',
  'value',
  'result',
  'context',
  'detail',
  'example',
  'consider',
  'first',
  'then',
  'because',
  'useful',
  'clear',
  'step',
  'approach',
  'summary',
  'point',
  'question',
  'information',
  'specific',
  'general',
  'option',
  'case',
  'and',
  'of',
  'to',
  'in',
  'is',
  'a',
  'for',
  'with',
  'this',
  'that',
  'on',
];

function genericReply(
  model: SimModelConfig,
  seed: number,
  prompt: string,
  choice: number,
  tokens?: number,
): string {
  const random = new Random(hashParts('generic', seed, model.name, prompt, choice));
  if (tokens !== undefined) {
    // Exactly `tokens` tokens of 4 characters each ("wor " units).
    let out = '';
    for (let index = 0; index < tokens; index++) {
      const word = random.pick(VOCABULARY);
      out += (word + 'xxx').slice(0, 3) + ' ';
    }
    return out;
  }
  const count = random.int(12, 48);
  const words: string[] = [];
  for (let index = 0; index < count; index++) words.push(random.pick(VOCABULARY));
  const first = words[0] ?? 'the';
  words[0] = first.charAt(0).toUpperCase() + first.slice(1);
  return `${words.join(' ')}.`;
}

/** Reasoning profile for models without one when a request turns extended thinking on. */
const DEFAULT_THINKING = { easy: 96, hard: 480, other: 160 };

function reasoningTokensFor(
  request: GenerationRequest,
  task: SimTask | undefined,
  choice: number,
): number {
  const profile =
    request.model.reasoningTokens ?? (request.thinking ? DEFAULT_THINKING : undefined);
  if (!profile) return 0;
  const base = task ? profile[task.difficulty] : profile.other;
  const cap = request.thinking?.budgetTokens ?? Number.POSITIVE_INFINITY;
  const effort =
    request.reasoningEffort === 'low' || request.reasoningEffort === 'minimal'
      ? 0.5
      : request.reasoningEffort === 'high'
        ? 2
        : 1;
  const jitter =
    0.75 + 0.5 * uniformOf('reasoning', request.seed, request.model.name, request.userText, choice);
  return Math.min(cap, Math.max(1, Math.round(base * effort * jitter)));
}

/** Fills a JSON value that satisfies a (subset of) JSON Schema, preferring values from `hint`. */
export function jsonFromSchema(
  schema: unknown,
  hint: (key: string, type: string) => unknown,
  root: unknown = schema,
  key = '',
  depth = 0,
): unknown {
  if (typeof schema !== 'object' || schema === null || depth > 8)
    return hint(key, 'string') ?? null;
  const node = schema as Record<string, unknown>;
  if (typeof node['$ref'] === 'string') {
    const path = node['$ref'].replace(/^#\/?/, '').split('/').filter(Boolean);
    let target: unknown = root;
    for (const part of path) target = (target as Record<string, unknown> | undefined)?.[part];
    return jsonFromSchema(target, hint, root, key, depth + 1);
  }
  if ('const' in node) return node['const'];
  if (Array.isArray(node['enum']) && node['enum'].length > 0) {
    const wanted = hint(key, 'enum');
    return node['enum'].includes(wanted) ? wanted : node['enum'][0];
  }
  const variants = (node['anyOf'] ?? node['oneOf']) as unknown[] | undefined;
  if (Array.isArray(variants) && variants.length > 0) {
    const nonNull = variants.find(
      (variant) => (variant as { type?: unknown } | null)?.type !== 'null',
    );
    return jsonFromSchema(nonNull ?? variants[0], hint, root, key, depth + 1);
  }
  if (Array.isArray(node['allOf']) && node['allOf'].length > 0) {
    return jsonFromSchema(node['allOf'][0], hint, root, key, depth + 1);
  }
  let type = node['type'];
  if (Array.isArray(type)) type = type.find((entry) => entry !== 'null') ?? type[0];
  if (type === undefined && typeof node['properties'] === 'object') type = 'object';
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const properties = (node['properties'] ?? {}) as Record<string, unknown>;
      for (const [name, child] of Object.entries(properties)) {
        out[name] = jsonFromSchema(child, hint, root, name, depth + 1);
      }
      return out;
    }
    case 'array': {
      // One item near the root; none deeper down (ends recursive schemas) unless minItems asks.
      const minItems = typeof node['minItems'] === 'number' ? node['minItems'] : 0;
      const count = Math.max(minItems, depth > 3 ? 0 : 1);
      const items: unknown[] = [];
      for (let index = 0; index < count; index++) {
        items.push(jsonFromSchema(node['items'], hint, root, key, depth + 1));
      }
      return items;
    }
    case 'integer':
    case 'number': {
      const wanted = hint(key, type);
      let value = typeof wanted === 'number' ? wanted : Number(wanted);
      const minimum = typeof node['minimum'] === 'number' ? node['minimum'] : undefined;
      const maximum = typeof node['maximum'] === 'number' ? node['maximum'] : undefined;
      const exclusiveMinimum =
        typeof node['exclusiveMinimum'] === 'number' ? node['exclusiveMinimum'] : undefined;
      const exclusiveMaximum =
        typeof node['exclusiveMaximum'] === 'number' ? node['exclusiveMaximum'] : undefined;
      if (!Number.isFinite(value)) value = minimum ?? 1;
      if (type === 'integer') value = Math.round(value);
      const step = type === 'integer' ? 1 : 0.001;
      if (minimum !== undefined && value < minimum) value = minimum;
      if (exclusiveMinimum !== undefined && value <= exclusiveMinimum)
        value = exclusiveMinimum + step;
      if (maximum !== undefined && value > maximum) value = maximum;
      if (exclusiveMaximum !== undefined && value >= exclusiveMaximum)
        value = exclusiveMaximum - step;
      return type === 'integer' ? Math.ceil(value) : value;
    }
    case 'boolean':
      return typeof hint(key, 'boolean') === 'boolean' ? hint(key, 'boolean') : true;
    case 'null':
      return null;
    default: {
      const format = node['format'];
      const known = hint(key, 'string');
      if (format === 'email')
        return typeof known === 'string' && known.includes('@') ? known : 'user@example.com';
      if (format === 'date-time') return '2025-01-01T00:00:00Z';
      if (format === 'date') return '2025-01-01';
      if (format === 'uuid') return '00000000-0000-4000-8000-000000000000';
      if (format === 'uri' || format === 'url') return 'https://example.com/';
      let text = known === undefined || known === null ? 'example' : String(known);
      if (typeof node['minLength'] === 'number' && text.length < node['minLength']) {
        text = text.padEnd(node['minLength'], 'x');
      }
      if (typeof node['maxLength'] === 'number' && text.length > node['maxLength']) {
        text = text.slice(0, node['maxLength']);
      }
      return text;
    }
  }
}

function promptHint(userText: string): (key: string, type: string) => unknown {
  return (key, type) => {
    const lower = key.toLowerCase();
    if (type === 'number' || type === 'integer') {
      const number = userText.match(/-?\d+(?:\.\d+)?/);
      return number ? Number(number[0]) : 1;
    }
    if (type !== 'string') return undefined;
    if (/city|location|place|town|country|destination|origin|address/.test(lower)) {
      const capitalized = userText.match(/(?<=\s)[A-Z][a-z]+/g);
      return capitalized?.[capitalized.length - 1] ?? 'Paris';
    }
    if (/unit/.test(lower)) return 'celsius';
    if (/query|search|text|input|prompt|question|q$/.test(lower)) return userText.slice(0, 80);
    return 'example';
  };
}

function chooseTool(request: GenerationRequest): ToolSpec | undefined {
  const { tools, toolChoice, directives } = request;
  if (tools.length === 0 || toolChoice === 'none') return undefined;
  if (typeof toolChoice === 'object')
    return tools.find((tool) => tool.name === toolChoice.name) ?? tools[0];
  if (toolChoice === 'required' || directives.tool || directives.badToolArgs) {
    return pickToolByName(tools, request.userText);
  }
  return request.afterToolResult ? undefined : pickToolByName(tools, request.userText);
}

function pickToolByName(tools: ToolSpec[], userText: string): ToolSpec | undefined {
  const lower = userText.toLowerCase();
  return (
    tools.find((tool) =>
      tool.name
        .toLowerCase()
        .split(/[_\W]+/)
        .some((part) => part.length > 3 && lower.includes(part)),
    ) ?? tools[0]
  );
}

/** Generates the `n` choices for a request; pure and deterministic in the request. */
export function generate(request: GenerationRequest): GeneratedChoice[] {
  const choices: GeneratedChoice[] = [];
  for (let index = 0; index < request.n; index++) choices.push(generateChoice(request, index));
  return choices;
}

function generateChoice(request: GenerationRequest, choiceIndex: number): GeneratedChoice {
  const { model, seed, directives, userText } = request;
  if (request.judge !== undefined && userText.includes(JUDGE_PROMPT_MARKER)) {
    const prompt = parseJudgePrompt(userText);
    if (prompt !== undefined) return judgeChoice(request, prompt, request.judge, choiceIndex);
  }
  const task = recognizeTask(userText);
  let reasoningTokens = reasoningTokensFor(request, task, choiceIndex);
  let correct: boolean | undefined;
  let text = '';
  let refusal: string | undefined;
  let toolCalls: GeneratedToolCall[] = [];
  let finish: GeneratedChoice['finish'] = 'stop';

  const tool = directives.refusal ? undefined : chooseTool(request);
  if (directives.refusal) {
    refusal = REFUSAL_TEXT;
  } else if (tool) {
    const args = jsonFromSchema(
      tool.parameters ?? { type: 'object', properties: {} },
      promptHint(userText),
    );
    let argumentsText = JSON.stringify(args);
    if (directives.badToolArgs)
      argumentsText = argumentsText.slice(0, Math.max(1, argumentsText.length - 2)) + ',';
    toolCalls = [
      {
        id: `${request.toolIdPrefix}${alphaId(24, 'tool', seed, request.requestSalt, choiceIndex)}`,
        name: tool.name,
        arguments: argumentsText,
      },
    ];
    finish = 'tool_calls';
  } else if (directives.empty) {
    text = '';
  } else {
    let answer: string | undefined;
    if (task) {
      const probability = model.quality[task.kind]?.[task.difficulty] ?? 0;
      const draw = uniformOf('correct', seed, model.name, userText, choiceIndex);
      correct = directives.correct ? true : directives.wrong ? false : draw < probability;
      answer = correct
        ? task.answer
        : wrongAnswer(task, hashParts('wrong', seed, model.name, userText, choiceIndex));
    }
    if (request.json) {
      const hintObject: Record<string, unknown> =
        task && answer !== undefined ? answerHint(task, answer) : {};
      const fallback = promptHint(userText);
      const hint = (key: string, type: string): unknown => {
        if (key in hintObject) return hintObject[key];
        const lower = key.toLowerCase();
        for (const [name, value] of Object.entries(hintObject))
          if (name.toLowerCase() === lower) return value;
        return fallback(key, type);
      };
      const value =
        request.json.schema !== undefined
          ? jsonFromSchema(request.json.schema, hint)
          : task && answer !== undefined
            ? task.kind === 'json'
              ? hintObject
              : { answer: hintObject['answer'] }
            : { answer: genericReply(model, seed, userText, choiceIndex, directives.tokens) };
      text = JSON.stringify(value);
      if (directives.invalidJson)
        text = text.slice(0, Math.max(1, text.length - 1)).replace(/"$/, '') + ',';
    } else if (task && answer !== undefined) {
      text = replyForTask(task, answer);
    } else {
      text = genericReply(model, seed, userText, choiceIndex, directives.tokens);
    }
    if (directives.invalidJson && !request.json) text = `{"answer": ${JSON.stringify(text)}`;
  }

  let visibleTokens =
    estimateTokens(text) +
    estimateTokens(refusal ?? '') +
    toolCalls.reduce(
      (sum, call) => sum + estimateTokens(call.name) + estimateTokens(call.arguments) + 3,
      0,
    );

  if (directives.length && finish !== 'tool_calls') {
    const keep = Math.max(1, Math.floor(visibleTokens / 2));
    text = text.slice(0, keep * 4);
    visibleTokens = estimateTokens(text);
    finish = 'length';
  }
  const max = request.maxOutputTokens;
  if (max !== undefined && reasoningTokens + visibleTokens > max) {
    finish = 'length';
    if (reasoningTokens >= max) {
      reasoningTokens = max;
      text = '';
      refusal = undefined;
      toolCalls = [];
      visibleTokens = 0;
    } else {
      const room = max - reasoningTokens;
      if (toolCalls.length > 0) {
        toolCalls = toolCalls.map((call) => ({
          ...call,
          arguments: call.arguments.slice(0, room * 4),
        }));
      } else if (refusal !== undefined) {
        refusal = refusal.slice(0, room * 4);
      } else {
        text = text.slice(0, room * 4);
      }
      visibleTokens = room;
    }
  }
  return {
    text,
    refusal,
    toolCalls,
    finish,
    outputTokens: visibleTokens + reasoningTokens,
    reasoningTokens,
    task,
    correct,
  };
}

/** A judge prompt's reply: the verdict as the request wants it (tool arguments, structured output or JSON text). */
function judgeChoice(
  request: GenerationRequest,
  prompt: JudgePrompt,
  config: SimJudgeConfig,
  choiceIndex: number,
): GeneratedChoice {
  const { seed, model, userText } = request;
  const verdict = judgeVerdict(prompt, config, [seed, model.name, userText, choiceIndex]);
  const fields = verdict.fields;
  let text = '';
  let toolCalls: GeneratedToolCall[] = [];
  let finish: GeneratedChoice['finish'] = 'stop';
  const tool = chooseTool(request);
  if (tool) {
    const args =
      fields === undefined
        ? { note: MALFORMED_JUDGE_TEXT }
        : jsonFromSchema(
            tool.parameters ?? { type: 'object', properties: {} },
            verdictHint(fields),
          );
    toolCalls = [
      {
        id: `${request.toolIdPrefix}${alphaId(24, 'tool', seed, request.requestSalt, choiceIndex)}`,
        name: tool.name,
        arguments: JSON.stringify(args),
      },
    ];
    finish = 'tool_calls';
  } else if (fields === undefined) {
    text = MALFORMED_JUDGE_TEXT;
  } else if (request.json?.schema !== undefined) {
    text = JSON.stringify(jsonFromSchema(request.json.schema, verdictHint(fields)));
  } else {
    text = JSON.stringify(fields);
  }
  const outputTokens =
    estimateTokens(text) +
    toolCalls.reduce(
      (sum, call) => sum + estimateTokens(call.name) + estimateTokens(call.arguments) + 3,
      0,
    );
  return {
    text,
    refusal: undefined,
    toolCalls,
    finish,
    outputTokens,
    reasoningTokens: 0,
    task: undefined,
    correct: undefined,
    judged: { verdict: fields, truth: verdict.truth },
  };
}

/** Splits text into stream pieces of roughly one word (a few tokens) each. */
export function splitPieces(text: string): string[] {
  if (text === '') return [];
  return text.match(/\s*\S+|\s+$/g) ?? [text];
}

/** Splits tool-call arguments the way providers stream them: short fragments. */
export function splitArguments(text: string): string[] {
  const pieces: string[] = [];
  for (let index = 0; index < text.length; index += 12) pieces.push(text.slice(index, index + 12));
  return pieces;
}

/**
 * Prompt cache (OpenAI-style automatic caching): remembers hashes of prompt prefixes at block
 * boundaries; the cached tokens of a prompt are the longest remembered prefix.
 */
export class PrefixCache {
  private readonly seen = new Set<number>();

  /** Returns the cached prefix length in tokens and remembers this prompt's prefixes. */
  lookup(prompt: string, minTokens: number, blockTokens: number): number {
    const totalTokens = estimateTokens(prompt);
    if (totalTokens < minTokens || !Number.isFinite(minTokens)) return 0;
    const blockChars = Math.max(1, blockTokens) * 4;
    const firstBoundary = minTokens * 4;
    let hash = 0x811c9dc5;
    let cachedChars = 0;
    const boundaries: number[] = [];
    let next = firstBoundary;
    for (let index = 0; index < prompt.length && next <= prompt.length; index++) {
      hash ^= prompt.charCodeAt(index);
      hash = Math.imul(hash, 0x01000193);
      if (index + 1 === next) {
        const key = hash >>> 0;
        if (this.seen.has(key)) cachedChars = next;
        boundaries.push(key);
        next += blockChars;
      }
    }
    if (this.seen.size > 100_000) this.seen.clear();
    for (const key of boundaries) this.seen.add(key);
    return Math.floor(cachedChars / 4);
  }

  /** Anthropic explicit caching: whether this exact prefix was written before (and remember it). */
  readOrWrite(prefix: string): 'read' | 'write' {
    const key = hashString(prefix);
    if (this.seen.has(key)) return 'read';
    if (this.seen.size > 100_000) this.seen.clear();
    this.seen.add(key);
    return 'write';
  }

  has(prefix: string): boolean {
    return this.seen.has(hashString(prefix));
  }
}
