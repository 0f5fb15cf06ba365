/**
 * Alert delivery: a bounded queue, one delivery at a time per webhook, JSON POSTs retried with
 * doubling back-off (and jitter) on network errors, timeouts, 408, 429 and 5xx. A full queue
 * drops its oldest alert, which is logged as every alert is.
 */
import type { AlertsConfig } from './config.js';
import type { AccessLogger } from './logger.js';

/** What a webhook receives (also readable by Slack-style receivers through `text`). */
export interface AlertPayload {
  readonly source: 'modelmaxx';
  readonly status: 'firing' | 'resolved' | 'test';
  readonly rule: string;
  readonly kind: string;
  /** One-line description. */
  readonly text: string;
  readonly value?: number;
  readonly threshold?: number;
  readonly window?: string;
  /** What the alert is about: model, feature, service, budget, subject… */
  readonly labels: Readonly<Record<string, string>>;
  /** When it was raised, RFC 3339. */
  readonly at: string;
}

export interface DeliveryResult {
  readonly url: string;
  readonly ok: boolean;
  readonly attempts: number;
  readonly status?: number;
  readonly error?: string;
}

interface Job {
  readonly payload: AlertPayload;
  readonly resolve: (results: DeliveryResult[]) => void;
}

type Webhook = AlertsConfig['webhooks'][number];

const RETRIABLE = (status: number) => status === 408 || status === 429 || status >= 500;

export class WebhookSender {
  private readonly queue: Job[] = [];
  private running: Promise<void> | undefined;
  private draining = false;
  private closed = false;
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  dropped = 0;
  delivered = 0;
  failed = 0;

  private readonly webhooks: readonly Webhook[];
  private readonly retry: AlertsConfig['retry'];
  private readonly queueSize: number;
  private readonly logger: AccessLogger;

  constructor(
    webhooks: readonly Webhook[],
    retry: AlertsConfig['retry'],
    queueSize: number,
    logger: AccessLogger,
  ) {
    this.webhooks = webhooks;
    this.retry = retry;
    this.queueSize = queueSize;
    this.logger = logger;
  }

  /** Logs the alert and queues it for every webhook; resolves once delivered or given up. */
  send(payload: AlertPayload): Promise<DeliveryResult[]> {
    this.logger.warn(
      { alert: payload.rule, kind: payload.kind, status: payload.status, labels: payload.labels },
      `alert ${payload.status}: ${payload.text}`,
    );
    if (this.webhooks.length === 0 || this.closed) return Promise.resolve([]);
    return new Promise((resolve) => {
      this.queue.push({ payload, resolve });
      while (this.queue.length > this.queueSize) {
        const oldest = this.queue.shift();
        this.dropped += 1;
        this.logger.error(
          { alert: oldest?.payload.rule },
          `alert queue full (${this.queueSize}): dropped the oldest alert`,
        );
        oldest?.resolve([]);
      }
      if (!this.draining) {
        // Set and cleared synchronously with the queue's last shift: a send that comes while
        // the last job resolves still finds a worker (or starts one).
        this.draining = true;
        this.running = this.drain();
      }
    });
  }

  /** Waits until the queue is empty. */
  async idle(): Promise<void> {
    while (this.draining) await this.running;
  }

  /** Stops retrying; alerts still queued are given up (and logged). */
  async close(): Promise<void> {
    this.closed = true;
    for (const sleep of this.sleeps) {
      clearTimeout(sleep.timer);
      sleep.resolve();
    }
    await this.idle();
  }

  private async drain(): Promise<void> {
    try {
      for (let job = this.queue.shift(); job !== undefined; job = this.queue.shift()) {
        const results = await Promise.all(this.webhooks.map((hook) => this.deliver(hook, job)));
        job.resolve(results);
      }
    } finally {
      this.draining = false;
    }
  }

  private async deliver(hook: Webhook, job: Job): Promise<DeliveryResult> {
    const body = JSON.stringify(job.payload);
    let delay = this.retry.initialDelayMs;
    let last: { status?: number; error?: string } = {};
    let attempt = 1;
    for (; attempt <= this.retry.attempts; attempt += 1) {
      try {
        const response = await fetch(hook.url, {
          method: 'POST',
          headers: {
            ...hook.headers,
            'content-type': 'application/json',
            'user-agent': 'modelmaxx-alerts',
          },
          body,
          signal: AbortSignal.timeout(this.retry.timeoutMs),
        });
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) {
          this.delivered += 1;
          return { url: redact(hook.url), ok: true, attempts: attempt, status: response.status };
        }
        last = { status: response.status };
        if (!RETRIABLE(response.status)) break;
      } catch (error) {
        last = { error: fetchFailure(error) };
      }
      if (attempt === this.retry.attempts || this.closed) break;
      this.logger.info(
        { url: redact(hook.url), attempt, ...last },
        `alert webhook failed, retrying in ${delay} ms`,
      );
      await this.sleep(delay * (0.75 + Math.random() * 0.5));
      delay = Math.min(this.retry.maxDelayMs, delay * 2);
    }
    this.failed += 1;
    this.logger.error(
      { url: redact(hook.url), alert: job.payload.rule, ...last },
      'alert webhook gave up',
    );
    return {
      url: redact(hook.url),
      ok: false,
      attempts: Math.min(attempt, this.retry.attempts),
      ...(last.status === undefined ? {} : { status: last.status }),
      ...(last.error === undefined ? {} : { error: last.error }),
    };
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.sleeps.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.sleeps.add(entry);
    });
  }
}

/** A webhook URL for logs: no credentials or query (Slack-style URLs carry secrets in the path). */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? '/…' : '/'}`;
  } catch {
    return '(invalid url)';
  }
}

/** fetch's error with its cause: "fetch failed: connect ECONNREFUSED 127.0.0.1:9", not "fetch failed". */
function fetchFailure(error: unknown): string {
  const { message, cause } = error as {
    message?: string;
    cause?: { message?: string; code?: string };
  };
  const detail = cause?.message ?? cause?.code;
  return detail === undefined || detail === '' ? String(message) : `${String(message)}: ${detail}`;
}
