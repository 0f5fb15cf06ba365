import type { ServerResponse } from 'node:http';
import type { ErrorShape, SseFrame } from './http-util.js';
import { errorBody, writeJson } from './http-util.js';

/**
 * Where a stream is cut short: after `after` frames, with an error frame, a clean end of the body
 * (`clean`: no terminator), or else a dropped connection.
 */
export interface StreamCut {
  after: number;
  errorFrame: string | undefined;
  clean?: boolean;
}

/** Detail of an error body (OpenAI's `param` and `code`). */
export interface ErrorDetails {
  param?: string | null;
  code?: string | null;
}

/**
 * Writes responses, paced: keeps the timers of delayed answers so that `close()` can cancel them
 * all, and cancels each when its response closes first.
 */
export class Responder {
  private readonly timers = new Set<NodeJS.Timeout>();

  /** Runs `fn` after `ms` (synchronously when 0); cancelled if the response closes first. */
  later(response: ServerResponse, ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      response.off('close', cancel);
      fn();
    }, ms);
    const cancel = (): void => {
      clearTimeout(timer);
      this.timers.delete(timer);
    };
    this.timers.add(timer);
    response.once('close', cancel);
  }

  /** Cancels every pending delayed answer (server shutdown). */
  cancelAll(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  sendError(
    response: ServerResponse,
    shape: ErrorShape,
    status: number,
    requestId: string,
    message?: string,
    details?: ErrorDetails,
    headers?: Record<string, string>,
  ): void {
    writeJson(response, status, errorBody(shape, status, requestId, message, details), headers);
  }

  /**
   * Streams SSE frames. Each frame waits for the tokens it carries (`perTokenMs` each); the first
   * one also waits `firstMs`. Frames without tokens go out with the one before them.
   * `cut` ends the stream early: after `cut.after` frames, with an error frame or a dropped connection.
   */
  sendSse(
    response: ServerResponse,
    frames: SseFrame[],
    firstMs: number,
    perTokenMs: number,
    cut: StreamCut | undefined,
  ): void {
    if (response.destroyed) return;
    const list = cut ? cutFrames(frames, cut) : frames;
    const drop = cut !== undefined && cut.errorFrame === undefined && cut.clean !== true;
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    if (firstMs <= 0 && perTokenMs <= 0) {
      const all = list.map((frame) => frame.text).join('');
      if (drop) response.write(all, () => response.destroy());
      else response.end(all);
      return;
    }
    response.flushHeaders();
    this.writePaced(response, list, firstMs, perTokenMs, drop);
  }

  /** Writes `list` frame by frame, each after the time its tokens take. */
  private writePaced(
    response: ServerResponse,
    list: SseFrame[],
    firstMs: number,
    perTokenMs: number,
    drop: boolean,
  ): void {
    const finish = (): void => {
      if (drop) response.destroy();
      else response.end();
    };
    if (list.length === 0) {
      finish();
      return;
    }
    let index = 0;
    const step = (): void => {
      if (response.destroyed) return;
      let batch = (list[index++] as SseFrame).text;
      while (index < list.length && (list[index] as SseFrame).tokens === 0)
        batch += (list[index++] as SseFrame).text;
      if (index >= list.length) {
        response.write(batch, finish);
        return;
      }
      response.write(batch);
      this.later(response, perTokenMs * (list[index] as SseFrame).tokens, step);
    };
    this.later(response, firstMs + perTokenMs * (list[0] as SseFrame).tokens, step);
  }
}

function cutFrames(frames: SseFrame[], cut: StreamCut): SseFrame[] {
  const list = frames.slice(0, Math.min(cut.after, frames.length));
  if (cut.errorFrame !== undefined) list.push({ text: cut.errorFrame, tokens: 0 });
  return list;
}
