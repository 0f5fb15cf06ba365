/**
 * JSON APIs: `POST /v1/feedback` (scores that arrive later), `GET /api/stats`
 * (the router's input) and `POST /api/sql` (read-only ad-hoc SQL with
 * ClickHouse's own limits).
 */
import { FeedbackSchema, StatsQuerySchema } from '@modelmaxx/semconv/schemas';
import { Router } from 'express';
import { z } from 'zod';
import type { Config } from '../config.js';
import { MalformedPayloadError, QueryRejectedError, UnsupportedMediaTypeError } from '../errors.js';
import { describeIssues } from '../otlp/decode-json.js';
import type { SpanStore } from '../store/span-store.js';
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

export function feedbackRouter(store: SpanStore): Router {
  const router = Router();
  router.post('/v1/feedback', async (request, response) => {
    const parsed = FeedbackSchema.safeParse(await readJson(request));
    if (!parsed.success) {
      throw new MalformedPayloadError(`invalid feedback: ${describeIssues(parsed.error)}`);
    }
    await store.insertFeedback(parsed.data);
    response.status(200).json({ status: 'ok' });
  });
  return router;
}

export function queryRouter(config: Config, store: SpanStore): Router {
  const router = Router();
  router.get('/api/stats', async (request, response) => {
    const parsed = StatsQuerySchema.safeParse(request.query);
    if (!parsed.success) {
      throw new MalformedPayloadError(`invalid stats query: ${describeIssues(parsed.error)}`);
    }
    response.status(200).json(await store.stats(parsed.data));
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
    let result;
    try {
      result = await store.querySql(sql, {
        maxRows,
        maxExecutionSeconds: config.sqlMaxExecutionSeconds,
      });
    } catch (error) {
      // The query is the caller's: ClickHouse's refusal (syntax, unknown table,
      // readonly, time limit) goes back to them as a 400 with its message.
      const name = (error as Error).name;
      if (name === 'SqlRejectedError' || name === 'ClickHouseError') {
        throw new QueryRejectedError((error as Error).message, { cause: error });
      }
      throw error;
    }
    response.status(200).json(result);
  });
  return router;
}
