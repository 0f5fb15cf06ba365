/**
 * `modelmaxx serve --gateway` as a real process: collector and gateway on one port, llm-sim
 * upstreams, driven by the Node openai SDK, the Python `openai` and `anthropic` SDKs (a venv made
 * here with pip) and curl; the gateway's spans land in the co-located store (llm_calls through
 * /api/sql), an incoming traceparent continues the app's trace. Needs `tsc -b` (runs the cli's dist).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { startLlmSim } from '@modelmaxx/llm-sim';
import type { LlmSim } from '@modelmaxx/llm-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestContext } from 'vitest';
import { rowsEventually } from './support/collector-sql.js';
import { spawnServeGateway } from './support/serve-gateway.js';
import type { ServeGateway } from './support/serve-gateway.js';

const run = promisify(execFile);

let sim: LlmSim;
let dir: string;
let serve: ServeGateway | undefined;
let url: string;
let python: string | undefined;
let pythonProblem = '';

/** A venv with the Python SDKs: the machine's local package index when it has one, else PyPI. */
async function pythonWithSdks(): Promise<string | undefined> {
  const venv = join(dir, 'venv');
  try {
    await run('python3', ['-m', 'venv', venv], { timeout: 120_000 });
    const pip = join(venv, 'bin', 'pip');
    const local = existsSync('/opt/pypi/simple')
      ? [
          '--index-url',
          'file:///opt/pypi/simple',
          ...(existsSync('/opt/pypi-more/simple')
            ? ['--extra-index-url', 'file:///opt/pypi-more/simple']
            : []),
        ]
      : [];
    await run(pip, ['install', '--quiet', ...local, 'openai', 'anthropic'], { timeout: 240_000 });
    return join(venv, 'bin', 'python');
  } catch (error) {
    pythonProblem = (error as Error).message.slice(0, 500);
    return undefined;
  }
}

/** A Python script's JSON output (its argument: the gateway's URL); skips without the SDKs. */
async function pythonOutput<T>(context: TestContext, name: string, script: string): Promise<T> {
  if (python === undefined) {
    console.warn(`gateway-serve: ${name} skipped, no Python SDKs: ${pythonProblem}`);
    context.skip();
  }
  const file = join(dir, name);
  await writeFile(file, script);
  const { stdout } = await run(python!, [file, url], { timeout: 120_000 });
  return JSON.parse(stdout) as T;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'modelmaxx-gateway-serve-'));
  sim = await startLlmSim({ seed: 3 });
  const config = join(dir, 'gateway.json');
  await writeFile(
    config,
    JSON.stringify({
      // An OpenAI-compatible server without the Responses API (llm-sim's chat endpoint).
      upstreams: {
        local: { kind: 'openai-compatible', baseURL: sim.openaiBaseURL, models: ['llama-*'] },
      },
      policies: [
        {
          name: 'support',
          candidates: [
            { model: 'gpt-4o-mini' },
            { model: 'claude-haiku-4-5', provider: 'anthropic' },
          ],
        },
      ],
    }),
  );
  const [started, venvPython] = await Promise.all([
    spawnServeGateway(
      join(dir, 'data'),
      [
        ...['--upstream', `openai=${sim.openaiBaseURL}`],
        ...['--upstream', `anthropic=${sim.anthropicBaseURL}`],
        ...['--config', config],
      ],
      { MODELMAXX_UPSTREAM_OPENAI_KEY: 'sk-test-upstream-openai-key' },
    ),
    pythonWithSdks(),
  ]);
  serve = started;
  url = started.url;
  python = venvPython;
}, 300_000);

afterAll(async () => {
  await serve?.stop();
  await sim?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('modelmaxx serve --gateway', () => {
  it('the Node openai SDK through the gateway: the call is stored, in the app trace', async () => {
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'app', maxRetries: 0 });
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const completion = await openai.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'node sdk' }] },
      {
        headers: {
          traceparent: `00-${traceId}-1122334455667788-01`,
          'x-modelmaxx-feature': 'gateway-e2e',
        },
      },
    );
    const rows = await rowsEventually(
      url,
      `SELECT TraceId, ParentSpanId, ServiceName, Provider, RequestModel, ResponseId, InputTokens,
              OutputTokens, CostUSD, CostSource, Feature
       FROM llm_calls WHERE ResponseId = '${completion.id}'`,
      1,
    );
    expect(rows).toHaveLength(1);
    const expected =
      (completion.usage!.prompt_tokens * 0.15 + completion.usage!.completion_tokens * 0.6) / 1e6;
    expect(rows[0]).toMatchObject({
      TraceId: traceId,
      ParentSpanId: '1122334455667788',
      ServiceName: 'modelmaxx-gateway',
      Provider: 'openai',
      RequestModel: 'gpt-4o-mini',
      InputTokens: completion.usage!.prompt_tokens,
      OutputTokens: completion.usage!.completion_tokens,
      Feature: 'gateway-e2e',
    });
    expect(rows[0]!['CostUSD']).toBeCloseTo(expected, 12);
  });

  it('curl: a streamed route:support call is stored with its route and time to first chunk', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '-N',
      '-H',
      'content-type: application/json',
      '-H',
      'x-modelmaxx-task: curl-e2e',
      '--data-binary',
      JSON.stringify({
        model: 'route:support',
        stream: true,
        messages: [{ role: 'user', content: 'streamed by curl' }],
      }),
      `${url}/v1/chat/completions`,
    ]);
    expect(stdout.trim().endsWith('data: [DONE]')).toBe(true);
    const rows = await rowsEventually(
      url,
      `SELECT RoutePolicy, RouteReason, Stream, TimeToFirstChunkMs, OutputTokens, CostUSD, Task
       FROM llm_calls WHERE Task = 'curl-e2e'`,
      1,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ RoutePolicy: 'support', Stream: true, Task: 'curl-e2e' });
    expect(Number(rows[0]!['TimeToFirstChunkMs'])).toBeGreaterThanOrEqual(0);
    expect(Number(rows[0]!['OutputTokens'])).toBeGreaterThan(0);
    expect(Number(rows[0]!['CostUSD'])).toBeGreaterThan(0);
  });

  it('the Python openai and anthropic SDKs: chat, stream, tools, embeddings, messages, both translations', async (context) => {
    if (python === undefined) {
      // No Python SDKs on this machine (pip could not install them): say so, do not pretend.
      console.warn(`gateway-serve: Python SDK part skipped: ${pythonProblem}`);
      context.skip();
      return;
    }
    const script = `
import json, sys
from openai import OpenAI
from anthropic import Anthropic
base = sys.argv[1]
out = {}
oa = OpenAI(base_url=base + "/v1", api_key="app", max_retries=0, default_headers={"x-modelmaxx-task": "python-e2e"})
chat = oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "python chat"}])
out["chat"] = {"id": chat.id, "content": chat.choices[0].message.content}
pieces = []
for chunk in oa.chat.completions.create(model="route:support", stream=True, messages=[{"role": "user", "content": "python stream"}]):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
out["stream"] = "".join(pieces)
tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]
tool = oa.chat.completions.create(model="gpt-4o", tools=tools, tool_choice="required", messages=[{"role": "user", "content": "python tool"}])
out["tool"] = tool.choices[0].message.tool_calls[0].function.name
resp = oa.responses.create(model="gpt-4o-mini", input="python responses")
out["responses"] = {"id": resp.id, "text": resp.output_text}
models = [model.id for model in oa.models.list()]
out["models"] = "route:support" in models
emb = oa.embeddings.create(model="text-embedding-3-small", input="python embedding", dimensions=4)
out["embedding"] = len(emb.data[0].embedding)
try:
    oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x [sim:status=429 retry-after=5]"}])
except Exception as error:
    out["error"] = {"status": error.status_code, "retry_after": error.response.headers.get("retry-after")}
an = Anthropic(base_url=base, api_key="app", max_retries=0, default_headers={"x-modelmaxx-task": "python-e2e"})
msg = an.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "python messages"}])
out["message"] = {"id": msg.id, "text": msg.content[0].text}
with an.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "python messages stream"}]) as stream:
    final = stream.get_final_message()
out["message_stream"] = {"id": final.id, "output_tokens": final.usage.output_tokens}
tool_use = an.messages.create(model="claude-sonnet-4-5", max_tokens=200, tools=[{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}], tool_choice={"type": "tool", "name": "lookup"}, messages=[{"role": "user", "content": "python tool use"}])
out["tool_use"] = [block.type for block in tool_use.content]
try:
    an.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x [sim:status=529]"}])
except Exception as error:
    out["anthropic_error"] = error.status_code
# Translated: OpenAI's format to an Anthropic model, Anthropic's format to an OpenAI model.
cross = oa.chat.completions.create(model="claude-haiku-4-5", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "python cross chat"}])
out["cross_chat"] = {"id": cross.id, "content": cross.choices[0].message.content, "finish": cross.choices[0].finish_reason}
pieces = []
for chunk in oa.chat.completions.create(model="claude-haiku-4-5", stream=True, stream_options={"include_usage": True}, messages=[{"role": "user", "content": "python cross stream"}]):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage is not None:
        out["cross_stream_usage"] = chunk.usage.completion_tokens
out["cross_stream"] = "".join(pieces)
cross_msg = an.messages.create(model="gpt-4o-mini", max_tokens=100, system="be brief", messages=[{"role": "user", "content": "python cross messages"}])
out["cross_message"] = {"text": cross_msg.content[0].text, "stop": cross_msg.stop_reason}
with an.messages.stream(model="gpt-4o-mini", max_tokens=100, messages=[{"role": "user", "content": "python cross messages stream"}]) as stream:
    final = stream.get_final_message()
out["cross_message_stream"] = {"text": final.content[0].text, "output_tokens": final.usage.output_tokens}
print(json.dumps(out))
`;
    const file = join(dir, 'client.py');
    await writeFile(file, script);
    const { stdout } = await run(python, [file, url], { timeout: 120_000 });
    const result = JSON.parse(stdout) as {
      chat: { id: string; content: string };
      stream: string;
      tool: string;
      embedding: number;
      error: { status: number; retry_after: string };
      message: { id: string; text: string };
      message_stream: { id: string; output_tokens: number };
      responses: { id: string; text: string };
      models: boolean;
      tool_use: string[];
      anthropic_error: number;
      cross_chat: { id: string; content: string; finish: string };
      cross_stream: string;
      cross_stream_usage: number;
      cross_message: { text: string; stop: string };
      cross_message_stream: { text: string; output_tokens: number };
    };
    expect(result.chat.content.length).toBeGreaterThan(0);
    expect(result.stream.length).toBeGreaterThan(0);
    expect(result.tool).toBe('lookup');
    expect(result.embedding).toBe(4);
    expect(result.error).toEqual({ status: 429, retry_after: '5' });
    expect(result.message.text.length).toBeGreaterThan(0);
    expect(result.message_stream.output_tokens).toBeGreaterThan(0);
    expect(result.responses.id).toMatch(/^resp_/);
    expect(result.responses.text.length).toBeGreaterThan(0);
    expect(result.models).toBe(true);
    expect(result.tool_use).toContain('tool_use');
    expect(result.anthropic_error).toBe(529);
    expect(result.cross_chat.content.length).toBeGreaterThan(0);
    expect(result.cross_chat.finish).toBe('stop');
    expect(result.cross_stream.length).toBeGreaterThan(0);
    expect(result.cross_stream_usage).toBeGreaterThan(0);
    expect(result.cross_message.text.length).toBeGreaterThan(0);
    expect(result.cross_message.stop).toBe('end_turn');
    expect(result.cross_message_stream.text.length).toBeGreaterThan(0);
    expect(result.cross_message_stream.output_tokens).toBeGreaterThan(0);
    const rows = await rowsEventually(
      url,
      `SELECT Provider, Operation, RequestModel, ResponseId, Stream, ErrorType, OutputTokens
       FROM llm_calls WHERE Task = 'python-e2e' ORDER BY Timestamp`,
      14,
    );
    // chat, stream, tools, responses, embeddings, the 429; messages, stream, tool use, the 529;
    // the four translated calls.
    expect(rows).toHaveLength(14);
    // The last four (the calls run one after another): OpenAI's format answered by the
    // Anthropic model, then Anthropic's format answered by the OpenAI model.
    expect(
      rows.slice(-4).map((row) => [row['RequestModel'], row['Provider'], row['Stream']]),
    ).toEqual([
      ['claude-haiku-4-5', 'anthropic', false],
      ['claude-haiku-4-5', 'anthropic', true],
      ['gpt-4o-mini', 'openai', false],
      ['gpt-4o-mini', 'openai', true],
    ]);
    expect(rows.at(-4)!['ResponseId']).toBe(result.cross_chat.id);
    const ids = rows.map((row) => row['ResponseId']);
    expect(ids).toEqual(
      expect.arrayContaining([
        result.chat.id,
        result.responses.id,
        result.message.id,
        result.message_stream.id,
      ]),
    );
    // The two messages calls, and the route:support stream when the engine picked Claude.
    expect(rows.filter((row) => row['Provider'] === 'anthropic').length).toBeGreaterThanOrEqual(2);
    expect(rows.filter((row) => row['Operation'] === 'embeddings')).toHaveLength(1);
    expect(rows.filter((row) => row['ErrorType'] === '429')).toHaveLength(1);
    expect(rows.filter((row) => row['ErrorType'] === '529')).toHaveLength(1);
  }, 180_000);

  it('the Python openai SDK: responses.create (plain and stream) to Claude and to a chat-only upstream, translated', async (context) => {
    const script = `
import json, sys
from openai import OpenAI
oa = OpenAI(base_url=sys.argv[1] + "/v1", api_key="app", max_retries=0, default_headers={"x-modelmaxx-task": "python-responses"})
out = {}
for key, model in (("claude", "claude-haiku-4-5"), ("compat", "llama-3.1-8b-instant")):
    plain = oa.responses.create(model=model, instructions="be brief", input="python responses", max_output_tokens=100)
    out[key] = {"id": plain.id, "text": plain.output_text, "status": plain.status}
    pieces, done = [], None
    for event in oa.responses.create(model=model, input="python responses stream", max_output_tokens=100, stream=True):
        if event.type == "response.output_text.delta":
            pieces.append(event.delta)
        if event.type == "response.completed":
            done = event.response
    out[key + "_stream"] = {"id": done.id, "text": "".join(pieces), "final": done.output_text, "output_tokens": done.usage.output_tokens}
with oa.responses.stream(model="llama-3.1-8b-instant", input="python responses helper", max_output_tokens=100) as stream:
    final = stream.get_final_response()
out["compat_helper"] = {"id": final.id, "text": final.output_text}
print(json.dumps(out))
`;
    type Answer = { id: string; text: string; status?: string; final?: string };
    const result = await pythonOutput<Record<string, Answer & { output_tokens?: number }>>(
      context,
      'responses.py',
      script,
    );
    for (const key of ['claude', 'compat']) {
      expect(result[key]!.status).toBe('completed');
      expect(result[key]!.text.length).toBeGreaterThan(0);
      expect(result[`${key}_stream`]!.text.length).toBeGreaterThan(0);
      expect(result[`${key}_stream`]!.final).toBe(result[`${key}_stream`]!.text);
      expect(result[`${key}_stream`]!.output_tokens).toBeGreaterThan(0);
    }
    expect(result['compat_helper']!.text.length).toBeGreaterThan(0);
    const rows = await rowsEventually(
      url,
      `SELECT SpanAttributes['gen_ai.provider.name'] AS provider,
              SpanAttributes['modelmaxx.gateway.upstream'] AS upstream,
              SpanAttributes['modelmaxx.gateway.upstream_api'] AS api,
              SpanAttributes['gen_ai.request.model'] AS model,
              SpanAttributes['gen_ai.response.id'] AS id,
              toFloat64OrZero(SpanAttributes['gen_ai.usage.cost.amount']) AS cost
       FROM otel_traces WHERE SpanAttributes['modelmaxx.task'] = 'python-responses'
       ORDER BY Timestamp`,
      5,
    );
    // Each call's span names the provider, upstream and API actually called, and is priced.
    expect(rows.map((row) => [row['model'], row['provider'], row['upstream'], row['api']])).toEqual(
      [
        ['claude-haiku-4-5', 'anthropic', 'anthropic', 'messages'],
        ['claude-haiku-4-5', 'anthropic', 'anthropic', 'messages'],
        ['llama-3.1-8b-instant', 'openai', 'local', 'chat'],
        ['llama-3.1-8b-instant', 'openai', 'local', 'chat'],
        ['llama-3.1-8b-instant', 'openai', 'local', 'chat'],
      ],
    );
    expect(rows.map((row) => row['id'])).toEqual(
      ['claude', 'claude_stream', 'compat', 'compat_stream', 'compat_helper'].map(
        (key) => result[key]!.id,
      ),
    );
    for (const row of rows) expect(Number(row['cost'])).toBeGreaterThan(0);
  }, 180_000);

  it('the collector still answers its own routes on the same port', async () => {
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((model) => model.id)).toContain('route:support');
  });
});
