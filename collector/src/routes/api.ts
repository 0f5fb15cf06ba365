/**
 * JSON APIs: `POST /v1/feedback` (scores that arrive later), `GET /api/stats`
 * (the router's input) and `POST /api/sql` (read-only ad-hoc SQL with
 * ClickHouse's own limits, in a bounded queue: 429 beyond it; a client that
 * disconnects cancels its query).
 */
import { FeedbackSchema, StatsQuerySchema } from '@modelmaxx/semconv/schemas';
import { setImmediate } from 'node:timers/promises';
import { Router, type Response } from 'express';
import { z } from 'zod';
import type { Config } from '../config.js';
import {
  MalformedPayloadError,
  OverloadedError,
  QueryRejectedError,
  UnsupportedMediaTypeError,
} from '../errors.js';
import { describeIssues } from '../otlp/decode-json.js';
import { ClickHouseError } from '../store/engine.js';
import type { SpanStore, SqlResult, StoreReader } from '../store/span-store.js';
import { SqlBusyError, SqlCancelledError, SqlRejectedError } from '../store/sql-adhoc.js';
import { mediaTypeOf, readBody } from './read-body.js';

/** Feedback and SQL bodies are small. */
const MAX_JSON_BODY_BYTES = 1024 * 1024;

async function readJson(request: Parameters<typeof readBody>[0]): Promise<unknown> {
  if (mediaTypeOf(request) !== 'application/json') {
    throw new UnsupportedMediaTypeError('this endpoint takes application/json');
  }
  const body = await readBody(request, MAX_JSON_BODY_BYTES);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new MalformedPayloadError(`invalid JSON: ${(error as Error).message}`, { cause: error });
  }
}

export const SqlRequestSchema = z
  .object({
    sql: z.string().min(1).optional(),
    query: z.string().min(1).optional(),
    maxRows: z.number().int().positive().optional(),
  })
  .refine((value) => value.sql !== undefined || value.query !== undefined, {
    message: 'give the query as "sql"',
    path: ['sql'],
  });

/** JSON text of rows written between two turns of the event loop. */
const SQL_WRITE_SLICE_BYTES = 256 * 1024;

/**
 * Writes `result` as the JSON `response.json()` would, a slice of rows at a
 * time (a turn of the event loop between slices, waiting for the socket when
 * it is full), so a large result never holds the other requests.
 */
async function sendSqlResult(response: Response, result: SqlResult): Promise<void> {
  response.status(200).type('application/json');
  const tail = {
    truncated: result.truncated,
    ...(result.truncatedBy === undefined ? {} : { truncatedBy: result.truncatedBy }),
  };
  let text = `{"columns":${JSON.stringify(result.columns)},"rows":[`;
  for (let index = 0; index < result.rows.length; index++) {
    text += (index === 0 ? '' : ',') + JSON.stringify(result.rows[index]);
    if (text.length < SQL_WRITE_SLICE_BYTES) continue;
    const flushed = response.write(text);
    text = '';
    if (response.destroyed) return;
    if (!flushed) {
      await new Promise<void>((resolve) => {
        const done = () => {
          response.off('drain', done);
          response.off('close', done);
          resolve();
        };
        response.on('drain', done);
        response.on('close', done);
      });
      if (response.destroyed) return;
    } else {
      await setImmediate();
    }
  }
  response.end(`${text}],${JSON.stringify(tail).slice(1)}`);
}

export function feedbackRouter(store: SpanStore): Router {
  const router = Router();
  router.post('/v1/feedback', async (request, response) => {
    const parsed = FeedbackSchema.safeParse(await readJson(request));
    if (!parsed.success) {
      throw new MalformedPayloadError(`invalid feedback: ${describeIssues(parsed.error)}`);
    }
    const feedback = parsed.data;
    const outcome = await store.insertFeedback(feedback);
    const within =
      feedback.service === undefined ? '' : ` in service ${JSON.stringify(feedback.service)}`;
    if (outcome.status === 'unknown') {
      response.status(404).json({
        error: `no LLM call with response id ${JSON.stringify(feedback.responseId ?? '')}${within}; feedback was not stored (give traceId and spanId to score a call the collector has not stored)`,
      });
      return;
    }
    if (outcome.status === 'ambiguous') {
      response.status(409).json({
        error: `response id ${JSON.stringify(feedback.responseId ?? '')} names ${outcome.calls} LLM calls${within} (services: ${outcome.services.join(', ')}); feedback was not stored: give service, or traceId and spanId`,
      });
      return;
    }
    response.status(200).json({ status: 'ok' });
  });
  return router;
}

export function queryRouter(config: Config, reader: StoreReader): Router {
  const router = Router();
  router.get('/api/stats', async (request, response) => {
    const parsed = StatsQuerySchema.safeParse(request.query);
    if (!parsed.success) {
      throw new MalformedPayloadError(`invalid stats query: ${describeIssues(parsed.error)}`);
    }
    response.status(200).json(await reader.stats(parsed.data));
  });
  router.post('/api/sql', async (request, response) => {
    let sql: string;
    let maxRows = config.sqlMaxRows;
    if (mediaTypeOf(request) === 'text/plain') {
      sql = (await readBody(request, MAX_JSON_BODY_BYTES)).toString('utf8');
    } else {
      const parsed = SqlRequestSchema.safeParse(await readJson(request));
      if (!parsed.success) {
        throw new MalformedPayloadError(`invalid SQL request: ${describeIssues(parsed.error)}`);
      }
      sql = (parsed.data.sql ?? parsed.data.query)!;
      if (parsed.data.maxRows !== undefined) maxRows = Math.min(maxRows, parsed.data.maxRows);
    }
    if (sql.trim() === '') throw new MalformedPayloadError('empty SQL query');
    // A client that gives up takes its query out of the queue, or has it killed.
    const abandoned = new AbortController();
    const onClose = () => {
      if (!response.writableFinished)
        abandoned.abort(new Error('the client closed the connection'));
    };
    response.once('close', onClose);
    let result;
    try {
      result = await reader.querySql(sql, {
        maxRows,
        maxExecutionSeconds: config.sqlMaxExecutionSeconds,
        maxMemoryBytes: config.sqlMaxMemoryBytes,
        maxResultBytes: config.sqlMaxResultBytes,
        ...(config.sqlMaxConcurrent === undefined
          ? {}
          : { maxConcurrent: config.sqlMaxConcurrent }),
        maxQueued: config.sqlMaxQueued,
        signal: abandoned.signal,
      });
    } catch (error) {
      // The query is the caller's: ClickHouse's refusal (syntax, unknown table,
      // readonly, time or memory limit) goes back to them as a 400 with its message.
      if (error instanceof SqlRejectedError || error instanceof ClickHouseError) {
        throw new QueryRejectedError(error.message, { cause: error });
      }
      if (error instanceof SqlBusyError) {
        throw new OverloadedError(error.message, 429, error.retryAfterSeconds, { cause: error });
      }
      // Nobody is left to answer.
      if (error instanceof SqlCancelledError) return;
      throw error;
    } finally {
      response.off('close', onClose);
    }
    await sendSqlResult(response, result);
  });
  return router;
}
