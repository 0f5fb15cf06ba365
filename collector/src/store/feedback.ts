/**
 * Feedback (`POST /v1/feedback`): late scores of stored LLM calls, as rows of `llm_scores`.
 * Finds the call a score names (by trace and span, or by response id), copies its
 * dimensions, and refuses a response id that names none or several calls.
 */
import type { Feedback } from '@modelmaxx/semconv/schemas';
import type { ClickHouseEngine } from './engine.js';
import type { TableNames } from './migration.js';
import type { SpanWriter } from './span-writer.js';
import type { FeedbackOutcome } from './span-store.js';

/** How long a score of a call not stored yet waits for the spool to catch up. */
const CATCH_UP_MS = 5_000;

type StoredCall = Record<string, string>;

function secondsAndNanos(date: Date): string {
  const ms = date.getTime();
  return `${Math.floor(ms / 1000)}.${String(ms % 1000).padStart(3, '0')}000000`;
}

/** The `llm_scores` row of `feedback` on `call` (when one is stored). */
function scoreRow(feedback: Feedback, call: StoredCall | undefined): Record<string, unknown> {
  const timestamp = feedback.timestamp === undefined ? new Date() : new Date(feedback.timestamp);
  return {
    Timestamp: secondsAndNanos(timestamp),
    TraceId: feedback.traceId ?? call?.['TraceId'] ?? '',
    SpanId: feedback.spanId ?? call?.['SpanId'] ?? '',
    ResponseId: feedback.responseId ?? call?.['ResponseId'] ?? '',
    Name: feedback.name,
    Score: feedback.score,
    Label: feedback.label ?? '',
    Explanation: feedback.comment ?? '',
    Source: feedback.source,
    ServiceName: call?.['ServiceName'] ?? feedback.service ?? '',
    Provider: call?.['Provider'] ?? '',
    Model: call?.['Model'] ?? '',
    Task: call?.['Task'] ?? '',
    Feature: call?.['Feature'] ?? '',
  };
}

export class FeedbackScores {
  private readonly engine: ClickHouseEngine;
  /** Where the scored calls are found (`llm_calls`) and the scores go (`llm_scores`). */
  private readonly tables: Pick<TableNames, 'calls' | 'scores'>;
  /** Spans acknowledged but maybe not inserted yet: a score may arrive before its call. */
  private readonly writer: SpanWriter;

  constructor(engine: ClickHouseEngine, tables: TableNames, writer: SpanWriter) {
    this.engine = engine;
    this.tables = { calls: tables.calls, scores: tables.scores };
    this.writer = writer;
  }

  async insert(feedback: Feedback): Promise<FeedbackOutcome> {
    let calls = await this.findCalls(feedback);
    // The scored call may still be on its way from the spool: look again once it caught up.
    if (calls.length === 0 && (await this.writer.caughtUp(CATCH_UP_MS)))
      calls = await this.findCalls(feedback);
    // A trace (and span) named by the caller is the target even when no call of it is stored;
    // a response id alone must name exactly one stored call.
    const named = feedback.traceId !== undefined;
    if (!named && calls.length === 0) return { status: 'unknown' };
    if (!named && calls.length > 1) {
      return {
        status: 'ambiguous',
        calls: calls.length,
        services: [...new Set(calls.map((found) => found['ServiceName'] ?? ''))].sort(),
      };
    }
    const call = calls[0];
    await this.engine.insert({
      table: this.tables.scores,
      format: 'JSONEachRow',
      body: Buffer.from(JSON.stringify(scoreRow(feedback, call)) + '\n'),
    });
    return { status: 'ok', linked: call !== undefined };
  }

  /**
   * The stored calls feedback names: by trace (and span) when given, else by response id within
   * `service` when given. Distinct spans, newest first; two are enough to know the id is ambiguous.
   */
  private async findCalls(feedback: Feedback): Promise<StoredCall[]> {
    const byTrace = feedback.traceId !== undefined;
    const result = await this.engine.query<StoredCall>(
      `SELECT TraceId, SpanId, any(ResponseId) AS ResponseId, any(ServiceName) AS ServiceName,
              any(Provider) AS Provider, any(if(RequestModel != '', RequestModel, ResponseModel)) AS Model,
              any(Task) AS Task, any(Feature) AS Feature, max(Timestamp) AS Last
       FROM (
         SELECT TraceId, SpanId, ResponseId, ServiceName, Provider, RequestModel, ResponseModel,
                Task, Feature, Timestamp
         FROM ${this.tables.calls}
         WHERE ${
           byTrace
             ? `TraceId = {traceId:String} AND ({spanId:String} = '' OR SpanId = {spanId:String})`
             : `ResponseId = {responseId:String} AND ({service:String} = '' OR ServiceName = {service:String})`
         }
       )
       GROUP BY TraceId, SpanId
       ORDER BY Last DESC
       LIMIT ${byTrace ? 1 : 10}`,
      {
        responseId: feedback.responseId ?? '',
        traceId: feedback.traceId ?? '',
        spanId: feedback.spanId ?? '',
        service: feedback.service ?? '',
      },
    );
    return result.data;
  }
}
