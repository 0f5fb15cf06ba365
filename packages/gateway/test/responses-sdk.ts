/**
 * What the `/v1/responses` translation tests ask of the openai SDK, whichever upstream answers
 * (Anthropic, or an OpenAI-style upstream without the Responses API): a stream read event by
 * event, a function call asked for plainly and streamed, parallel calls, a refused request.
 */
import OpenAI from 'openai';
import { expect } from 'vitest';

export const weather: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  strict: false,
};

const time: OpenAI.Responses.FunctionTool = {
  type: 'function',
  name: 'get_time',
  parameters: { type: 'object', properties: { zone: { type: 'string' } } },
  strict: false,
};

/** The text of a response's message items, joined. */
export const outputTextOf = (response: OpenAI.Responses.Response): string =>
  response.output
    .flatMap((item) => (item.type === 'message' ? item.content : []))
    .map((part) => (part.type === 'output_text' ? part.text : ''))
    .join('');

/** A `responses.create` stream: its event types (a run of deltas as one), numbers, text, end. */
export async function readResponsesStream(openai: OpenAI, model: string) {
  const stream = await openai.responses.create({
    model,
    input: 'Tell me about tea.',
    max_output_tokens: 200,
    stream: true,
  });
  const types: string[] = [];
  const sequence: number[] = [];
  let text = '';
  let completed: OpenAI.Responses.Response | undefined;
  for await (const event of stream) {
    if (types.at(-1) !== event.type) types.push(event.type);
    sequence.push(event.sequence_number);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') completed = event.response;
  }
  expect(sequence).toEqual(sequence.map((_, index) => index));
  expect(text.length).toBeGreaterThan(0);
  expect(outputTextOf(completed!)).toBe(text);
  return { types, completed: completed! };
}

/** `responses.stream()`'s final response, its text the deltas' (checked). */
export async function streamHelperAnswer(openai: OpenAI, model: string) {
  const helper = openai.responses.stream({
    model,
    input: 'Tell me about coffee.',
    max_output_tokens: 200,
  });
  let deltas = '';
  helper.on('response.output_text.delta', (event) => (deltas += event.delta));
  const final = await helper.finalResponse();
  expect(final.output_text).toBe(deltas);
  expect(final.status).toBe('completed');
  return final;
}

/** A forced `get_weather` call, not in parallel: the response, its call and arguments. */
export async function forcedCall(openai: OpenAI, model: string) {
  const response = await openai.responses.create({
    model,
    input: 'Weather in Paris?',
    tools: [weather],
    tool_choice: { type: 'function', name: 'get_weather' },
    parallel_tool_calls: false,
    max_output_tokens: 200,
  });
  const call = response.output.find((item) => item.type === 'function_call');
  expect(call).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'completed' });
  const args = call?.type === 'function_call' ? call.arguments : '';
  expect(typeof (JSON.parse(args) as { city: unknown }).city).toBe('string');
  return { response, call: call as OpenAI.Responses.ResponseFunctionToolCall, args };
}

/** A required call through `responses.stream()`: its arguments are the streamed deltas. */
export async function streamedCall(openai: OpenAI, model: string): Promise<void> {
  const helper = openai.responses.stream({
    model,
    input: 'Weather in Oslo?',
    tools: [weather],
    tool_choice: 'required',
    max_output_tokens: 200,
  });
  let streamedArgs = '';
  helper.on('response.function_call_arguments.delta', (event) => (streamedArgs += event.delta));
  const streamed = await helper.finalResponse();
  const call = streamed.output.find((item) => item.type === 'function_call');
  expect(call?.type === 'function_call' && call.name).toBe('get_weather');
  expect(call?.type === 'function_call' && call.arguments).toBe(streamedArgs);
}

/** The forced call's output sent back: the answer (checked to have text). */
export async function answerAfterCall(
  openai: OpenAI,
  model: string,
  called: Awaited<ReturnType<typeof forcedCall>>,
) {
  const answer = await openai.responses.create({
    model,
    tools: [weather],
    max_output_tokens: 200,
    input: [
      { role: 'user', content: 'Weather in Paris?' },
      ...(called.response.output as OpenAI.Responses.ResponseInputItem[]),
      { type: 'function_call_output', call_id: called.call.call_id, output: '18 C, sunny' },
    ],
  });
  expect(answer.output_text.length).toBeGreaterThan(0);
  return answer;
}

/**
 * Two parallel calls whole, then streamed with `streamDirective` (e.g. llm-sim's
 * ` interleave-tools`): the same calls, one item each with distinct ids.
 */
export async function parallelCalls(openai: OpenAI, model: string, streamDirective = '') {
  const ask = (directive: string) => ({
    model,
    input: `Weather and time in Rome [sim:parallel-tools=2${directive}]`,
    tools: [weather, time],
    tool_choice: 'required' as const,
    max_output_tokens: 300,
  });
  const calls = (response: OpenAI.Responses.Response) =>
    response.output.flatMap((item) =>
      item.type === 'function_call' ? [[item.name, item.arguments]] : [],
    );
  const whole = await openai.responses.create(ask(''));
  expect(calls(whole).map(([name]) => name)).toEqual(['get_weather', 'get_time']);
  const streamed = await openai.responses.stream(ask(streamDirective)).finalResponse();
  expect(calls(streamed)).toEqual(calls(whole));
  expect(new Set(streamed.output.map((item) => item.id)).size).toBe(streamed.output.length);
}

/** Each request (`input: 'Hi'` plus the fields) refused with a 400 naming what and `format`. */
export async function expectRefused(
  openai: OpenAI,
  model: string,
  cases: readonly (readonly [object, string])[],
  format: string,
): Promise<void> {
  for (const [extra, named] of cases) {
    const error = (await openai.responses
      .create({ model, input: 'Hi', ...extra } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
      .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.message).toContain(named);
    expect(error.message).toContain(`cannot be translated to ${format}`);
  }
}

/** An upstream 429 passed back (status, retry-after), then a stream error as the SDK's APIError. */
export async function expectErrors(openai: OpenAI, model: string): Promise<void> {
  const limited = (await openai.responses
    .create({ model, input: 'Hi [sim:status=429 retry-after=6]' })
    .catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.RateLimitError>;
  expect(limited).toBeInstanceOf(OpenAI.RateLimitError);
  expect(limited.headers.get('retry-after')).toBe('6');
  // The upstream's error body, in OpenAI's shape.
  expect((limited.error as { message?: unknown }).message).toEqual(expect.any(String));
  const stream = await openai.responses.create({
    model,
    input: 'Tell me a story [sim:stream-error]',
    max_output_tokens: 200,
    stream: true,
  });
  const read = (async () => {
    for await (const event of stream) void event;
  })();
  await expect(read).rejects.toBeInstanceOf(OpenAI.APIError);
}
