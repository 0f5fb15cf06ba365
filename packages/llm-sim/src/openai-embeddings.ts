import type { CallContext, CallResult, JsonObject } from './context.js';
import { invalid } from './context.js';
import { estimateTokens } from './tokens.js';
import { Random, hashString } from './random.js';

/** A deterministic unit vector for a text (same text, same vector, whatever the seed). */
export function embeddingOf(text: string, dimensions: number): Float32Array {
  const random = new Random(hashString(text));
  const vector = new Float32Array(dimensions);
  let norm = 0;
  for (let index = 0; index < dimensions; index++) {
    const value = random.next() * 2 - 1;
    vector[index] = value;
    norm += value * value;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let index = 0; index < dimensions; index++)
    vector[index] = (vector[index] as number) * scale;
  return vector;
}

/** `POST /v1/embeddings` (`encoding_format` float or base64). */
export function handleEmbeddings(body: JsonObject, context: CallContext): CallResult {
  const raw = body['input'];
  let inputs: string[];
  let tokens = 0;
  if (typeof raw === 'string') {
    inputs = [raw];
  } else if (Array.isArray(raw) && raw.length > 0) {
    if (raw.every((entry) => typeof entry === 'string')) inputs = raw;
    else if (raw.every((entry) => typeof entry === 'number')) inputs = [raw.join(',')];
    else if (raw.every((entry) => Array.isArray(entry)))
      inputs = raw.map((entry: unknown[]) => entry.join(','));
    else return invalid("Invalid type for 'input'.", 'input');
  } else {
    return invalid("'input' must be a non-empty string or array.", 'input');
  }
  for (const entry of inputs) {
    if (entry === '')
      return invalid("'$.input' is invalid. Please check the API reference.", 'input');
  }
  const dimensions =
    typeof body['dimensions'] === 'number'
      ? body['dimensions']
      : (context.model.dimensions ?? 1536);
  if (
    !Number.isInteger(dimensions) ||
    dimensions < 1 ||
    dimensions > (context.model.dimensions ?? 1536)
  ) {
    return invalid(
      `This model does not support specifying dimensions of ${dimensions}.`,
      'dimensions',
    );
  }
  const encoding = body['encoding_format'] ?? 'float';
  if (encoding !== 'float' && encoding !== 'base64') {
    return invalid(
      `Invalid value for 'encoding_format': '${String(encoding)}'.`,
      'encoding_format',
    );
  }
  const data = inputs.map((text, index) => {
    tokens +=
      Array.isArray(raw) && Array.isArray(raw[index])
        ? (raw[index] as unknown[]).length
        : estimateTokens(text);
    const vector = embeddingOf(text, dimensions);
    return {
      object: 'embedding',
      index,
      embedding:
        encoding === 'base64'
          ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64')
          : Array.from(vector),
    };
  });
  return {
    kind: 'json',
    outputTokens: 0,
    body: {
      object: 'list',
      data,
      model: context.model.responseModel ?? context.model.name,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    },
  };
}
