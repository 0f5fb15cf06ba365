/**
 * Decoding off the event loop: export request bodies are decoded into Native
 * blocks by a few worker threads (`decode-worker.ts`), so that no body — a
 * 16 MiB JSON body takes the better part of a second to `JSON.parse` alone, a
 * crafted one several — holds up `/healthz`, reads or other requests' I/O. The
 * body is transferred to the thread and the block back, not copied.
 *
 * Threads start on the first request (or `warm()`), and one idle for `idleMs`
 * ends (they are `unref()`ed while idle, so they never keep a process alive). The
 * collectors of one process share a pool (`DecodePool.shared`). With `threads: 0`
 * decoding runs on the calling thread.
 */
import { Worker } from 'node:worker_threads';
import { PayloadTooLargeError } from '../errors.js';
import {
  decodeRequest,
  errorOfDecodeFailure,
  loadJsonDecoder,
  ownedBytes,
  type DecodeJob,
  type DecodeReply,
} from './decode-request.js';
import type { OtlpEncoding } from './encode-response.js';
import type { DecodeLimits, EncodedTraces } from './to-span-rows.js';

/** The worker's entry next to this file: `.ts` when running from the sources (tests). */
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './decode-worker.ts' : './decode-worker.js',
  import.meta.url,
);

interface Job extends DecodeJob {
  resolve(result: EncodedTraces): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  ready: boolean;
  job: Job | undefined;
  idleTimer: NodeJS.Timeout | undefined;
}

export interface DecodePoolOptions {
  /** Worker threads; 0 decodes on the calling thread. */
  threads: number;
  /** A thread idle this long ends (default 30 s). */
  idleMs?: number;
}

/** The process's pools by thread count (collectors in one process share their threads). */
const sharedPools = new Map<number, DecodePool>();

export class DecodePool {
  /** The process-wide pool of `threads` threads. */
  static shared(threads: number): DecodePool {
    let pool = sharedPools.get(threads);
    if (pool === undefined) {
      pool = new DecodePool({ threads });
      sharedPools.set(threads, pool);
    }
    return pool;
  }

  readonly size: number;
  private readonly idleMs: number;
  private readonly threads = new Set<Thread>();
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: DecodePoolOptions) {
    this.size = options.threads;
    this.idleMs = options.idleMs ?? 30_000;
  }

  /** Starts the threads now rather than on the first request (each takes ~0.1-0.3 s to start). */
  warm(): void {
    while (!this.closed && this.threads.size < this.size) this.spawn();
  }

  /** Requests waiting for a thread. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Decodes one request body (transferred to the thread: do not use it after).
   * Rejects with `MalformedPayloadError` (400) or `PayloadTooLargeError` (413) as
   * the decoders throw them; anything else is an internal error.
   */
  decode(encoding: OtlpEncoding, body: Uint8Array, limits: DecodeLimits): Promise<EncodedTraces> {
    if (this.size === 0) {
      if (encoding === 'json') {
        return loadJsonDecoder().then(() => decodeRequest(encoding, body, limits));
      }
      try {
        return Promise.resolve(decodeRequest(encoding, body, limits));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    if (this.closed) return Promise.reject(new Error('the decode threads are closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, encoding, body, limits, resolve, reject });
      this.dispatch();
    });
  }

  /** Ends the threads; requests still waiting fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('the decode threads are closed'));
    await Promise.all([...this.threads].map((thread) => thread.worker.terminate()));
    this.threads.clear();
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let idle: Thread | undefined;
      for (const thread of this.threads) {
        if (thread.ready && thread.job === undefined) {
          idle = thread;
          break;
        }
      }
      if (idle === undefined) {
        // Threads still starting take the queue when they are ready; until then they
        // keep the process up for the requests waiting on them.
        if (this.threads.size < this.size) this.spawn();
        for (const thread of this.threads) if (!thread.ready) thread.worker.ref();
        return;
      }
      this.assign(idle, this.queue.shift()!);
    }
  }

  private assign(thread: Thread, job: Job): void {
    thread.job = job;
    if (thread.idleTimer !== undefined) clearTimeout(thread.idleTimer);
    thread.idleTimer = undefined;
    thread.worker.ref();
    const body = ownedBytes(job.body);
    const message: DecodeJob = { id: job.id, encoding: job.encoding, body, limits: job.limits };
    try {
      thread.worker.postMessage(message, [body.buffer as ArrayBuffer]);
    } catch {
      // A buffer Node will not let go of (marked untransferable): send a copy.
      const copy = new Uint8Array(body);
      thread.worker.postMessage({ ...message, body: copy }, [copy.buffer]);
    }
  }

  private spawn(): void {
    // A request that needs more memory than this fails alone (413), not the process.
    const worker = new Worker(WORKER_URL, {
      name: 'modelmaxx-decode',
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
    });
    const thread: Thread = { worker, ready: false, job: undefined, idleTimer: undefined };
    this.threads.add(thread);
    worker.unref();
    worker.on('message', (message: DecodeReply | { ready: true }) => {
      if ('ready' in message) {
        thread.ready = true;
        this.dispatch();
        return;
      }
      const job = thread.job;
      thread.job = undefined;
      if (job !== undefined && job.id === message.id) {
        if ('result' in message) {
          const { block, ...counts } = message.result;
          job.resolve({
            ...counts,
            block: Buffer.from(block.buffer, block.byteOffset, block.byteLength),
          });
        } else job.reject(errorOfDecodeFailure(message.error, job.limits));
      }
      this.idle(thread);
      this.dispatch();
    });
    worker.on('error', (error: Error & { code?: string }) => {
      const failure =
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new PayloadTooLargeError(
              'decoding the request needed more memory than a decode thread may use',
              0,
              { cause: error },
            )
          : new Error(`a decode thread failed: ${error.message}`, { cause: error });
      thread.job?.reject(failure);
      thread.job = undefined;
      if (!thread.ready) {
        // It could not start: fail what waits instead of starting thread after thread.
        for (const job of this.queue.splice(0)) job.reject(failure);
      }
    });
    worker.on('exit', () => {
      this.threads.delete(thread);
      if (thread.idleTimer !== undefined) clearTimeout(thread.idleTimer);
      thread.job?.reject(new Error('a decode thread stopped'));
      thread.job = undefined;
      if (!this.closed) this.dispatch();
    });
    // Started without a job (`warm`): ends when idle like any other.
    worker.once('online', () => {
      if (thread.job === undefined && thread.idleTimer === undefined && this.queue.length === 0) {
        this.idle(thread);
      }
    });
  }

  private idle(thread: Thread): void {
    thread.worker.unref();
    thread.idleTimer = setTimeout(() => {
      if (thread.job !== undefined) return;
      thread.ready = false;
      void thread.worker.terminate();
    }, this.idleMs);
    thread.idleTimer.unref();
  }
}
