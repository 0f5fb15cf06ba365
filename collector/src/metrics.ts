/**
 * The collector's own counters in the Prometheus text exposition format
 * (version 0.0.4): what the receiver counted, merged with the store's counters.
 */

/** Upper bounds (seconds) of the write-latency histogram buckets. */
const WRITE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class CollectorMetrics {
  /** Spans decoded from OTLP requests, rejected ones included. */
  spansReceived = 0;
  /** Spans rejected by the decoders (partial success). */
  spansRejected = 0;
  /** Spans refused with 429/503 because the store could not take them. */
  spansRefused = 0;
  /** Spans acknowledged to clients (stored in ClickHouse or in the spool). */
  spansAccepted = 0;
  /**
   * Export requests refused before their spans were counted (decoding them is
   * what the limits protect), by reason: `concurrency` (429, every slot taken),
   * `buffered_bytes` (429, bodies still arriving hold too much), `body_timeout`
   * (408), `too_large` (413: body, inflated body or span count).
   */
  readonly requestsRefused = new Map<string, number>();
  /** Names and attribute values cut to the configured limits. */
  valuesTruncated = 0;
  /** Export requests holding a slot (decoding or waiting on the store), and bodies still arriving. */
  ingestInProgress = 0;
  ingestBodiesReading = 0;
  readonly requests = new Map<string, number>();
  readonly writeBucketCounts = WRITE_BUCKETS.map(() => 0);
  writeCount = 0;
  writeSumSeconds = 0;

  countRequest(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  refuseRequest(reason: 'concurrency' | 'buffered_bytes' | 'body_timeout' | 'too_large'): void {
    this.requestsRefused.set(reason, (this.requestsRefused.get(reason) ?? 0) + 1);
  }

  observeWrite(seconds: number): void {
    this.writeCount += 1;
    this.writeSumSeconds += seconds;
    for (let index = 0; index < WRITE_BUCKETS.length; index++) {
      if (seconds <= WRITE_BUCKETS[index]!) this.writeBucketCounts[index]! += 1;
    }
  }

  /** Prometheus text, with `store` (from `SpanStore.metrics()`) merged in. */
  render(store: Record<string, number>): string {
    const text = new PrometheusText();
    this.renderSpans(text);
    renderInserts(text, store);
    this.renderRequests(text);
    renderSpool(text, store);
    renderOtherStoreMetrics(text, store);
    return text.toString();
  }

  /** What the receiver counted of spans and export requests. */
  private renderSpans(text: PrometheusText): void {
    const metric = text.metric.bind(text);
    metric(
      'modelmaxx_spans_received_total',
      'counter',
      'Spans decoded from OTLP export requests, rejected ones included.',
      [['', this.spansReceived]],
    );
    metric(
      'modelmaxx_spans_rejected_total',
      'counter',
      'Spans rejected as invalid (reported to clients as partial success).',
      [['', this.spansRejected]],
    );
    metric(
      'modelmaxx_spans_accepted_total',
      'counter',
      'Spans acknowledged to clients (durable in ClickHouse or in the spool).',
      [['', this.spansAccepted]],
    );
    metric(
      'modelmaxx_spans_refused_total',
      'counter',
      'Spans refused with 429 or 503 because the store could not take more.',
      [['', this.spansRefused]],
    );
    metric(
      'modelmaxx_ingest_requests_refused_total',
      'counter',
      'Export requests refused before their spans were decoded, by reason (concurrency, buffered_bytes, body_timeout, too_large).',
      [...this.requestsRefused].map(([reason, value]) => [`{reason="${reason}"}`, value]),
    );
    metric(
      'modelmaxx_values_truncated_total',
      'counter',
      'Names and attribute values cut to the configured length limits (marked with "…[truncated N bytes]").',
      [['', this.valuesTruncated]],
    );
    metric(
      'modelmaxx_ingest_requests_in_progress',
      'gauge',
      'Export requests holding a slot (decoding or waiting on the store); the limit is maxConcurrentRequests.',
      [['', this.ingestInProgress]],
    );
    metric(
      'modelmaxx_ingest_bodies_reading',
      'gauge',
      'Export request bodies still arriving (they hold no slot).',
      [['', this.ingestBodiesReading]],
    );
  }

  /** The write-latency histogram and the HTTP requests answered. */
  private renderRequests(text: PrometheusText): void {
    const buckets: Sample[] = WRITE_BUCKETS.map((bound, index) => [
      `_bucket{le="${bound}"}`,
      this.writeBucketCounts[index]!,
    ]);
    buckets.push(['_bucket{le="+Inf"}', this.writeCount]);
    buckets.push(['_sum', this.writeSumSeconds], ['_count', this.writeCount]);
    text.metric(
      'modelmaxx_ingest_write_duration_seconds',
      'histogram',
      'Time from handing decoded spans to the store until they were durable (or refused).',
      buckets,
    );
    text.metric(
      'modelmaxx_http_requests_total',
      'counter',
      'HTTP requests answered, by route and status code.',
      [...this.requests].map(([key, value]) => {
        const [route, status] = key.split('\u0000');
        return [`{route="${escapeLabel(route ?? '')}",code="${status}"}`, value];
      }),
    );
  }
}

type Sample = [labels: string, value: number];

/** Prometheus text exposition, one metric (HELP, TYPE, samples) after the other. */
class PrometheusText {
  private readonly lines: string[] = [];

  metric(
    name: string,
    type: 'counter' | 'gauge' | 'summary' | 'histogram',
    help: string,
    samples: Sample[],
  ): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples)
      this.lines.push(`${name}${labels} ${formatValue(value)}`);
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** The store's counters named here; any other it reports is rendered by its own name. */
const NAMED_STORE_METRICS = new Set([
  'stored',
  'spooled',
  'batchLatencyMsSum',
  'batchLatencyCount',
  'spoolWriteErrors',
  'quarantined',
  'quarantinedBytes',
]);

/** What the store inserted into ClickHouse and spooled, and how long its inserts took. */
function renderInserts(text: PrometheusText, store: Record<string, number>): void {
  text.metric('modelmaxx_spans_stored_total', 'counter', 'Spans inserted into ClickHouse.', [
    ['', store.stored ?? 0],
  ]);
  text.metric(
    'modelmaxx_spans_spooled_total',
    'counter',
    'Spans written to the on-disk spool before their ClickHouse insert.',
    [['', store.spooled ?? 0]],
  );
  text.metric(
    'modelmaxx_batch_duration_seconds',
    'summary',
    'Duration of the ClickHouse batch inserts of otel_traces.',
    [
      ['_sum', (store.batchLatencyMsSum ?? 0) / 1000],
      ['_count', store.batchLatencyCount ?? 0],
    ],
  );
}

/** The spool's failures: writes rolled back and damaged segments cut. */
function renderSpool(text: PrometheusText, store: Record<string, number>): void {
  text.metric(
    'modelmaxx_store_spool_write_errors_total',
    'counter',
    'Spool writes that failed (e.g. the disk is full) and were rolled back; their requests got 503.',
    [['', store.spoolWriteErrors ?? 0]],
  );
  text.metric(
    'modelmaxx_store_quarantined_total',
    'counter',
    'Damaged spool segments cut back to their last whole block (the rest moved to spool/quarantine).',
    [['', store.quarantined ?? 0]],
  );
  text.metric(
    'modelmaxx_store_quarantined_bytes_total',
    'counter',
    'Bytes cut off damaged spool segments.',
    [['', store.quarantinedBytes ?? 0]],
  );
}

/** Every other store metric: a gauge when its name says it is a size, else a counter. */
function renderOtherStoreMetrics(text: PrometheusText, store: Record<string, number>): void {
  for (const [key, value] of Object.entries(store)) {
    if (NAMED_STORE_METRICS.has(key) || !Number.isFinite(value)) continue;
    const gauge = /bytes$|segments$|queued|pending|size$/i.test(key) && !/replayed/i.test(key);
    const name = `modelmaxx_store_${snakeCase(key)}${gauge ? '' : '_total'}`;
    text.metric(name, gauge ? 'gauge' : 'counter', `Store metric ${key}.`, [['', value]]);
  }
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const snakeCase = (key: string): string =>
  key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[^A-Za-z0-9_]/g, '_')
    .toLowerCase();

const escapeLabel = (value: string): string =>
  value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
