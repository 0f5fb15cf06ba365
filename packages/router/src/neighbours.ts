/**
 * Nearest neighbours over request embeddings: the predictor's similarity-based estimate of each
 * candidate's quality for a request, from the scores candidates got on the most similar
 * requests seen (docs/routing.md, "Nearest neighbours").
 */
import { DotMatrix } from './dot-kernel.js';

/** Rows a memory may hold (the policy's limit): a row's index takes the low bits of its sort key. */
const MAX_ROWS = 2 ** 20;

/** A bounded memory of (request embedding, every scored candidate's score), oldest dropped first. */
export class NeighbourMemory {
  readonly candidates: number;
  readonly capacity: number;
  /**
   * Unit-length copies of the embeddings, one row each (made at the first embedding, whose
   * length fixes the dimensions: later ones are cut or zero-padded to it).
   */
  private units: DotMatrix | undefined;
  private readonly kernel: 'wasm' | 'js';
  /** Per row, per candidate: the score, NaN when that candidate was not scored. */
  private readonly scores: Float64Array[] = [];
  /** The embedding object each row was made from (a request's scores share one row). */
  private readonly sources: Float32Array[] = [];
  private readonly rowOf = new WeakMap<Float32Array, number>();
  /** The row a full memory overwrites next. */
  private next = 0;
  /** Bumped on every change: a cached neighbour ranking is stale once it moves. */
  version = 0;
  /** Sort keys: the dissimilarity in the high `32 − rowBits` bits, the row in the low ones. */
  private readonly keys: Uint32Array;
  private readonly rowBits: number;
  private readonly order: Uint32Array;

  /** `kernel`: `js` computes the similarities without WebAssembly (tests compare the two). */
  constructor(candidates: number, capacity: number, kernel: 'wasm' | 'js' = 'wasm') {
    this.candidates = candidates;
    this.capacity = capacity;
    this.kernel = kernel;
    if (capacity > MAX_ROWS) throw new RangeError(`at most ${MAX_ROWS} rows`);
    this.rowBits = Math.max(1, Math.ceil(Math.log2(Math.max(capacity, 2))));
    this.keys = new Uint32Array(capacity);
    this.order = new Uint32Array(capacity);
  }

  get size(): number {
    return this.scores.length;
  }

  /** Whether the similarities are computed by the WebAssembly SIMD kernel. */
  get simd(): boolean {
    return this.units?.simd ?? false;
  }

  /** Records one candidate's score on the request whose embedding this is. */
  add(embedding: Float32Array, candidate: number, score: number): void {
    let row = this.rowOf.get(embedding);
    if (row === undefined || this.sources[row] !== embedding) {
      row = this.size < this.capacity ? this.size : this.next;
      this.next = (row + 1) % this.capacity;
      this.units ??= new DotMatrix(embedding.length, this.capacity, this.kernel);
      this.units.setRow(row, embedding, inverseNorm(embedding));
      const scores = new Float64Array(this.candidates).fill(Number.NaN);
      if (row === this.size) {
        this.scores.push(scores);
        this.sources.push(embedding);
      } else {
        this.scores[row] = scores;
        this.sources[row] = embedding;
      }
      this.rowOf.set(embedding, row);
    }
    this.scores[row]![candidate] = score;
    this.version += 1;
  }

  /**
   * Ranks the rows by cosine similarity to `embedding`; returns how many were ranked. The
   * ranking is in `order` (row indexes, most similar first; ties by row) until the next call.
   * The sort is the typed array's own over 32-bit keys, without a comparator (5x faster than
   * over 64-bit ones at 2,048 rows): each key is the dissimilarity, in the bits the row index
   * leaves (21 at 2,048 rows, 12 at the most rows), above the row's index.
   */
  private rank(embedding: Float32Array): number {
    const size = this.size;
    const similarities = this.units!.products(embedding, inverseNorm(embedding), size);
    const rowSpace = 2 ** this.rowBits;
    const levels = 2 ** (32 - this.rowBits) - 1;
    const keys = this.keys.subarray(0, size);
    for (let row = 0; row < size; row += 1) {
      const similarity = similarities[row]!;
      // NaN (an embedding holding NaN) ranks as the least similar
      const clamped = similarity >= -1 ? (similarity <= 1 ? similarity : 1) : -1;
      keys[row] = Math.floor(((1 - clamped) / 2) * levels) * rowSpace + row;
    }
    keys.sort();
    const order = this.order;
    const mask = rowSpace - 1;
    for (let at = 0; at < size; at += 1) order[at] = keys[at]! & mask;
    return size;
  }

  /**
   * Each candidate's mean score over the `ks[i]` most similar rows holding its score:
   * `means[i × candidates + c]` (NaN when no row holds it) and `found[i × candidates + c]` the
   * rows it rests on. `ks` ascending.
   */
  predict(
    embedding: Float32Array,
    ks: readonly number[],
    means: Float64Array,
    found: Float64Array,
  ): void {
    const size = this.rank(embedding);
    const candidates = this.candidates;
    for (let candidate = 0; candidate < candidates; candidate += 1) {
      let sum = 0;
      let count = 0;
      let at = 0;
      for (let entry = 0; entry < size && at < ks.length; entry += 1) {
        const score = this.scores[this.order[entry]!]![candidate]!;
        if (Number.isNaN(score)) continue;
        sum += score;
        count += 1;
        while (at < ks.length && count >= ks[at]!) {
          means[at * candidates + candidate] = sum / count;
          found[at * candidates + candidate] = count;
          at += 1;
        }
      }
      for (; at < ks.length; at += 1) {
        means[at * candidates + candidate] = count > 0 ? sum / count : Number.NaN;
        found[at * candidates + candidate] = count;
      }
    }
  }
}

/** 1 / the vector's length (0 for a zero vector). */
function inverseNorm(embedding: Float32Array): number {
  let norm = 0;
  for (let dim = 0; dim < embedding.length; dim += 1) norm += embedding[dim]! * embedding[dim]!;
  return norm > 0 ? 1 / Math.sqrt(norm) : 0;
}

/**
 * A prediction moved toward the neighbours' mean score: by `weight` × `cover` (the share of the
 * neighbours read that hold the candidate's score, 0..1). The predictor and the offline fit's
 * choice of the weight (`TrustFit`) both blend this way.
 */
export function blendNeighbours(base: number, mean: number, weight: number, cover: number): number {
  const share = weight * cover;
  return (1 - share) * base + share * mean;
}
