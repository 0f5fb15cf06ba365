/**
 * Reference answers kept for repeated requests (`shadow.referenceCache`): the key is a hash of
 * the reference model and the request as the reference would be asked it (without streaming),
 * the store a small LRU. A repeated request is then judged against the kept answer, and only
 * the judge call is spent on it. Off (size 0) by default: it pays only where requests repeat
 * exactly (templated prompts, retries, popular questions).
 */
import { createHash } from 'node:crypto';
import type { ChatCompletion, ChatParams } from './router-types.js';

export class ReferenceCache {
  private readonly entries = new Map<string, ChatCompletion>();
  private readonly size: number;
  constructor(size: number) {
    this.size = size;
  }

  /** The key of a request to `model` (undefined when the cache is off). */
  keyOf(model: string, params: ChatParams): string | undefined {
    if (this.size <= 0) return undefined;
    const { stream: _stream, stream_options: _options, model: _model, ...request } = params;
    return createHash('sha256')
      .update(model)
      .update('\u0000')
      .update(JSON.stringify(request))
      .digest('base64url');
  }

  get(key: string | undefined): ChatCompletion | undefined {
    if (key === undefined) return undefined;
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Whether an answer is kept for `key` (without touching its recency). */
  has(key: string | undefined): boolean {
    return key !== undefined && this.entries.has(key);
  }

  set(key: string | undefined, completion: ChatCompletion): void {
    if (key === undefined) return;
    this.entries.delete(key);
    this.entries.set(key, completion);
    while (this.entries.size > this.size) {
      this.entries.delete(this.entries.keys().next().value!);
    }
  }
}
