/** The requests `modelmaxx demo` sends: routed tasks, a support stream, embeddings and a tool loop. */
import type OpenAI from 'openai';
import { feedback, withLlmContext } from '@modelmaxx/instrument';
import { checkAnswer, generateTask, TASK_KINDS } from '@modelmaxx/llm-sim';
import type { SimTask } from '@modelmaxx/llm-sim';
import type { Router } from '@modelmaxx/router';
import type { ServiceClients } from './demo-setup.js';

/**
 * The support bot's system prompt: a help-centre excerpt long enough (> 1024 tokens) for
 * OpenAI-style prompt caching, so repeated calls report cached input tokens.
 */
const SUPPORT_SYSTEM_PROMPT = [
  'You are the support assistant of Acme Cloud. Answer briefly and precisely.',
  ...Array.from(
    { length: 40 },
    (_, index) =>
      `Help-centre article ${index + 1}: accounts, billing, invoices, refunds, plan limits, API keys, rate limits and data retention are handled as described in section ${index + 1}.`,
  ),
].join('\n');

export interface Traffic {
  services: readonly ServiceClients[];
  /** One router per service, in the same order. */
  routers: readonly Router[];
  random: () => number;
  seed: number;
  requests: number;
  /** Requests in flight at once. */
  concurrency: number;
  out: (text: string) => void;
}

export interface TrafficOutcome {
  /** Requests that failed after the router's fallbacks. */
  failed: number;
  firstError: string | undefined;
}

/** Sends `requests` requests, `concurrency` at a time, printing progress every 50. */
export async function runTraffic(traffic: Traffic): Promise<TrafficOutcome> {
  const outcome: TrafficOutcome = { failed: 0, firstError: undefined };
  let done = 0;
  let next = 0;
  const one = async (index: number): Promise<void> => {
    await sendRequest(traffic, index).catch((error: unknown) => {
      outcome.failed++;
      outcome.firstError ??= `${(error as Error).name}: ${(error as Error).message}`;
    });
    done++;
    if (done % 50 === 0) traffic.out(`  ${done} / ${traffic.requests}\n`);
  };
  await Promise.all(
    Array.from({ length: Math.min(traffic.concurrency, traffic.requests) }, async () => {
      while (next < traffic.requests) await one(next++);
    }),
  );
  return outcome;
}

const FEATURES = ['chat', 'ticket-summary', 'search-answer', 'review-comment'];

type RequestKind = 'embedding' | 'support-stream' | 'lint-tool' | 'routed';

/** Request `index`: its service, task, user and kind (a few of each service's calls bypass the router). */
function sendRequest(traffic: Traffic, index: number): Promise<void> {
  const { services, random, seed } = traffic;
  const serviceIndex = index % services.length;
  const service = services[serviceIndex]!;
  const router = traffic.routers[serviceIndex]!;
  const kind = TASK_KINDS[Math.floor(random() * TASK_KINDS.length)] ?? 'arithmetic';
  const difficulty = random() < 0.4 ? 'hard' : 'easy';
  const task = generateTask({ kind, difficulty, seed, index });
  const taskLabel = `${kind}-${difficulty}`;
  const userId = `user-${Math.floor(random() * 25)}`;
  const feature = FEATURES[(index + serviceIndex) % FEATURES.length] ?? 'chat';
  const shape = random();
  const requestKind: RequestKind =
    service.name === 'search' && shape < 0.15
      ? 'embedding'
      : service.name === 'support-bot' && shape < 0.25
        ? 'support-stream'
        : service.name === 'code-review' && shape < 0.2
          ? 'lint-tool'
          : 'routed';
  // Calls that bypass the router get task labels of their own: a routing class is one kind of
  // work, and a long-prompt stream or a tool loop in an arithmetic class would skew its stats.
  const contextTask = {
    embedding: 'search-embedding',
    'support-stream': 'support-stream',
    'lint-tool': 'code-lint',
    routed: taskLabel,
  }[requestKind];
  const llmContext = { task: contextTask, feature, userId, conversationId: `conv-${index % 40}` };
  return withLlmContext(llmContext, async () => {
    if (requestKind === 'embedding') await embed(service.client, task);
    else if (requestKind === 'support-stream') await supportStream(service.client, task);
    else if (requestKind === 'lint-tool') await lintToolLoop(service.client, index);
    else await routedTask(router, task, taskLabel, random);
  });
}

async function embed(client: OpenAI, task: SimTask): Promise<void> {
  await client.embeddings.create({ model: 'text-embedding-3-small', input: task.prompt });
}

/** A streamed answer straight from one model (no router). */
async function supportStream(client: OpenAI, task: SimTask): Promise<void> {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: SUPPORT_SYSTEM_PROMPT },
      { role: 'user', content: task.prompt },
    ],
    stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  if (text === '') throw new Error('empty stream');
}

const LINT_TOOLS = [
  {
    type: 'function' as const,
    function: {
      name: 'run_linter',
      description: 'Runs the linter on a file',
      parameters: {
        type: 'object',
        properties: { path: { type: 'string' } },
        required: ['path'],
      },
    },
  },
];

/** A tool call and the follow-up with the tool's result. */
async function lintToolLoop(client: OpenAI, index: number): Promise<void> {
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: 'user', content: `Lint src/file-${index}.ts and summarise the problems.` },
  ];
  const tools = LINT_TOOLS;
  const first = await client.chat.completions.create({ model: 'gpt-4o', messages, tools });
  const call = first.choices[0]?.message.tool_calls?.[0];
  if (call === undefined) return;
  messages.push(first.choices[0]!.message, {
    role: 'tool',
    tool_call_id: call.id,
    content: '2 warnings: unused variable, missing return type',
  });
  await client.chat.completions.create({ model: 'gpt-4o', messages, tools });
}

/** A task through the router; a quarter of the answers get a user's thumbs up or down later. */
async function routedTask(
  router: Router,
  task: SimTask,
  taskLabel: string,
  random: () => number,
): Promise<void> {
  const completion = await router.chat.completions.create(
    { model: 'auto', messages: [{ role: 'user', content: task.prompt }] },
    { task: taskLabel },
  );
  const text = completion.choices[0]?.message.content ?? '';
  if (random() < 0.25 && completion.id !== '') {
    const right = checkAnswer(task, text);
    feedback({
      responseId: completion.id,
      name: 'user.thumbs',
      score: right ? 1 : 0,
      label: right ? 'up' : 'down',
    });
  }
}
