import { hashString } from './random.js';
import { estimateTokens } from './tokens.js';

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
