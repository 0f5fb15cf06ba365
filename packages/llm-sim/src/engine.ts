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
import { jsonFromSchema, promptHint } from './json-fill.js';
import { Random, alphaId, hashParts, uniformOf } from './random.js';
import { estimateTokens } from './tokens.js';
import { answerHint, recognizeTask, replyForTask, wrongAnswer } from './tasks.js';
import type { SimTask } from './tasks.js';

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
  const { userText } = request;
  if (request.judge !== undefined && userText.includes(JUDGE_PROMPT_MARKER)) {
    const prompt = parseJudgePrompt(userText);
    if (prompt !== undefined) return judgeChoice(request, prompt, request.judge, choiceIndex);
  }
  const task = recognizeTask(userText);
  const reasoningTokens = reasoningTokensFor(request, task, choiceIndex);
  return { ...limitTokens(request, replyFor(request, task, choiceIndex), reasoningTokens), task };
}

/** What a choice says, before the output token limits cut it. */
interface Reply {
  text: string;
  refusal: string | undefined;
  toolCalls: GeneratedToolCall[];
  finish: GeneratedChoice['finish'];
  correct: boolean | undefined;
}

const SILENT: Reply = {
  text: '',
  refusal: undefined,
  toolCalls: [],
  finish: 'stop',
  correct: undefined,
};

/** A refusal, a tool call, nothing (`empty`) or an answer, as the directives and tools say. */
function replyFor(
  request: GenerationRequest,
  task: SimTask | undefined,
  choiceIndex: number,
): Reply {
  const { directives } = request;
  if (directives.refusal) return { ...SILENT, refusal: REFUSAL_TEXT };
  const tool = chooseTool(request);
  if (tool) {
    const first = request.tools.indexOf(tool);
    const toolCalls = Array.from({ length: directives.parallelTools ?? 1 }, (_, call) =>
      toolCallFor(
        request,
        request.tools[(first + call) % request.tools.length]!,
        choiceIndex,
        call,
      ),
    );
    return { ...SILENT, toolCalls, finish: 'tool_calls' };
  }
  if (directives.empty) return SILENT;
  return answerReply(request, task, choiceIndex);
}

/** The `call`-th tool call of a choice (string values of later calls numbered, so they differ). */
function toolCallFor(
  request: GenerationRequest,
  tool: ToolSpec,
  choiceIndex: number,
  call: number,
): GeneratedToolCall {
  const base = promptHint(request.userText);
  const hint =
    call === 0
      ? base
      : (key: string, type: string): unknown => {
          const value = base(key, type);
          return typeof value === 'string' ? `${value} ${call + 1}` : value;
        };
  let argumentsText = JSON.stringify(jsonFromSchema(parametersOf(tool), hint));
  if (request.directives.badToolArgs)
    argumentsText = argumentsText.slice(0, Math.max(1, argumentsText.length - 2)) + ',';
  const salt = call === 0 ? choiceIndex : `${choiceIndex}.${call}`;
  return toolCallOf(request, tool, argumentsText, salt);
}

function parametersOf(tool: ToolSpec): unknown {
  return tool.parameters ?? { type: 'object', properties: {} };
}

function toolCallOf(
  request: GenerationRequest,
  tool: ToolSpec,
  argumentsText: string,
  salt: number | string,
): GeneratedToolCall {
  const id = alphaId(24, 'tool', request.seed, request.requestSalt, salt);
  return { id: `${request.toolIdPrefix}${id}`, name: tool.name, arguments: argumentsText };
}

/** The model's answer: right or wrong for a recognised task (by its quality), else generic text. */
function answerReply(
  request: GenerationRequest,
  task: SimTask | undefined,
  choiceIndex: number,
): Reply {
  const { model, seed, directives, userText } = request;
  let answer: string | undefined;
  let correct: boolean | undefined;
  if (task) {
    const probability = model.quality[task.kind]?.[task.difficulty] ?? 0;
    const draw = uniformOf('correct', seed, model.name, userText, choiceIndex);
    correct = directives.correct ? true : directives.wrong ? false : draw < probability;
    answer = correct
      ? task.answer
      : wrongAnswer(task, hashParts('wrong', seed, model.name, userText, choiceIndex));
  }
  const answered = task && answer !== undefined ? { task, answer } : undefined;
  let text: string;
  if (request.json) text = jsonAnswer(request, request.json, answered, choiceIndex);
  else if (answered) text = replyForTask(answered.task, answered.answer);
  else text = genericReply(model, seed, userText, choiceIndex, directives.tokens);
  if (directives.invalidJson && !request.json) text = `{"answer": ${JSON.stringify(text)}`;
  return { ...SILENT, text, correct };
}

/** JSON output: the schema filled with the answer's fields, or `{ answer }` without a schema. */
function jsonAnswer(
  request: GenerationRequest,
  json: { schema: unknown },
  answered: { task: SimTask; answer: string } | undefined,
  choiceIndex: number,
): string {
  const { model, seed, directives, userText } = request;
  const hintObject: Record<string, unknown> = answered
    ? answerHint(answered.task, answered.answer)
    : {};
  const fallback = promptHint(userText);
  const hint = (key: string, type: string): unknown => {
    if (key in hintObject) return hintObject[key];
    const lower = key.toLowerCase();
    for (const [name, value] of Object.entries(hintObject))
      if (name.toLowerCase() === lower) return value;
    return fallback(key, type);
  };
  const value =
    json.schema !== undefined
      ? jsonFromSchema(json.schema, hint)
      : answered
        ? answered.task.kind === 'json'
          ? hintObject
          : { answer: hintObject['answer'] }
        : { answer: genericReply(model, seed, userText, choiceIndex, directives.tokens) };
  const text = JSON.stringify(value);
  if (!directives.invalidJson) return text;
  return text.slice(0, Math.max(1, text.length - 1)).replace(/"$/, '') + ',';
}

/** Output tokens of what a choice shows (text, refusal, tool calls). */
function visibleTokensOf(text: string, refusal: string, toolCalls: GeneratedToolCall[]): number {
  return (
    estimateTokens(text) +
    estimateTokens(refusal) +
    toolCalls.reduce(
      (sum, call) => sum + estimateTokens(call.name) + estimateTokens(call.arguments) + 3,
      0,
    )
  );
}

/** Applies the `length` directive and `maxOutputTokens` (reasoning first, then what is shown). */
function limitTokens(
  request: GenerationRequest,
  reply: Reply,
  reasoning: number,
): Omit<GeneratedChoice, 'task'> {
  let { text, refusal, toolCalls, finish } = reply;
  let reasoningTokens = reasoning;
  let visibleTokens = visibleTokensOf(text, refusal ?? '', toolCalls);
  if (request.directives.length && finish !== 'tool_calls') {
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
      const chars = (max - reasoningTokens) * 4;
      if (toolCalls.length > 0) {
        toolCalls = toolCalls.map((call) => ({
          ...call,
          arguments: call.arguments.slice(0, chars),
        }));
      } else if (refusal !== undefined) {
        refusal = refusal.slice(0, chars);
      } else {
        text = text.slice(0, chars);
      }
      visibleTokens = max - reasoningTokens;
    }
  }
  const outputTokens = visibleTokens + reasoningTokens;
  return {
    text,
    refusal,
    toolCalls,
    finish,
    outputTokens,
    reasoningTokens,
    correct: reply.correct,
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
        : jsonFromSchema(parametersOf(tool), verdictHint(fields));
    toolCalls = [toolCallOf(request, tool, JSON.stringify(args), choiceIndex)];
    finish = 'tool_calls';
  } else if (fields === undefined) {
    text = MALFORMED_JUDGE_TEXT;
  } else if (request.json?.schema !== undefined) {
    text = JSON.stringify(jsonFromSchema(request.json.schema, verdictHint(fields)));
  } else {
    text = JSON.stringify(fields);
  }
  const outputTokens = visibleTokensOf(text, '', toolCalls);
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
