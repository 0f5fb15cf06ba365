/**
 * The request's settings a `response` object says back, as OpenAI's Responses API does in every
 * response (whole, and each stream lifecycle event): what the request gave, else the value
 * OpenAI reports for a field not given (`temperature: 1`, `tools: []`, `store: true`…).
 * Fields the translation refuses unless at their no-op value (`previous_response_id`,
 * `background`, `truncation`…) are said at that value.
 */
import { asDict } from '../usage.js';

type Dict = Record<string, unknown>;

const given = (value: unknown, otherwise: unknown): unknown =>
  value === undefined || value === null ? otherwise : value;

/**
 * A function tool as a response lists it: as given, with the fields the `openai` SDK's
 * `FunctionTool` always has (`parameters`, `strict`) null when not given.
 */
function echoedTool(tool: unknown): unknown {
  const dict = asDict(tool);
  if (dict?.['type'] !== 'function') return tool;
  return {
    ...dict,
    parameters: given(dict['parameters'], null),
    strict: given(dict['strict'], null),
  };
}

/** `text`: its format (else plain text) and verbosity (else `medium`). */
function echoedText(text: unknown): Dict {
  const dict = asDict(text);
  return {
    format: given(asDict(dict?.['format']), { type: 'text' }),
    verbosity: given(dict?.['verbosity'], 'medium'),
  };
}

/** The request settings of a `response` object for a Responses request `body`. */
export function responseEcho(body: Dict): Dict {
  const reasoning = asDict(body['reasoning']);
  const tools = Array.isArray(body['tools']) ? body['tools'].map(echoedTool) : [];
  return {
    background: given(body['background'], false),
    instructions: given(body['instructions'], null),
    max_output_tokens: given(body['max_output_tokens'], null),
    max_tool_calls: null,
    metadata: given(asDict(body['metadata']), {}),
    parallel_tool_calls: given(body['parallel_tool_calls'], true),
    previous_response_id: null,
    prompt_cache_key: given(body['prompt_cache_key'], null),
    reasoning: {
      effort: given(reasoning?.['effort'], null),
      summary: given(reasoning?.['summary'], null),
    },
    safety_identifier: given(body['safety_identifier'], null),
    store: given(body['store'], true),
    temperature: given(body['temperature'], 1),
    text: echoedText(body['text']),
    tool_choice: given(body['tool_choice'], 'auto'),
    tools,
    top_logprobs: given(body['top_logprobs'], 0),
    top_p: given(body['top_p'], 1),
    truncation: given(body['truncation'], 'disabled'),
    user: given(body['user'], null),
  };
}
