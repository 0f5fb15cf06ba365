/**
 * Relay sinks for an answer in the other provider's format: a whole JSON answer (or error) is
 * read to its end and written once in the app's format; a stream is converted event by event as
 * it arrives. The span reads the upstream's own format, as for an untranslated answer. A
 * Responses request answered in Chat Completions (an upstream without the Responses API) comes
 * back through the Anthropic shape, the converters to Responses reading only that.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { BodyRelay, EventScanner } from '../relay.js';
import type { RelayOptions, Sink } from '../relay.js';
import { returnedHeaders } from '../upstream.js';
import type { Summary } from '../usage.js';
import { asDict } from '../usage.js';
import { anthropicMessageOf, chatCompletionOf, errorBodyFor } from './responses.js';
import { responseOfChat, responseOfMessage } from './responses-answers.js';
import { AnthropicToResponses, ChatToResponses } from './responses-stream.js';
import { AnthropicToChat, CUT_SHORT, ChatToAnthropic } from './streams.js';
import type { StreamConverter } from './streams.js';

/**
 * Relay options as a translation reads them: the app's request body too (a `response` object
 * says the Responses request's settings back). `relay` passes them on as it got them.
 */
export interface TranslateOptions extends RelayOptions {
  readonly request?: Record<string, unknown>;
}

/** What a translating sink reads of the upstream's answer (`UpstreamAnswer` gives them). */
export interface AnswerHead {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
}

/** A whole JSON answer or error, translated at its end (headers and all written then). */
class TranslatedBody implements Sink {
  private readonly body: BodyRelay;
  private readonly upstream: AnswerHead;
  private readonly response: ServerResponse;
  private readonly options: TranslateOptions;

  constructor(upstream: AnswerHead, response: ServerResponse, options: TranslateOptions) {
    this.body = new BodyRelay(upstream, response, options.upstreamWire, true);
    this.upstream = upstream;
    this.response = response;
    this.options = options;
  }

  write(chunk: Buffer): void {
    this.body.write(chunk);
  }

  private translated(): { status: number; text: string } {
    const status = this.upstream.statusCode;
    const raw = this.body.body().toString('utf8');
    if (status >= 400) return { status, text: errorBodyFor(this.options.wire, status, raw) };
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = asDict(JSON.parse(raw));
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined) {
      const text = errorBodyFor(this.options.wire, 502, 'the upstream answer is not JSON');
      return { status: 502, text };
    }
    const now = Math.floor(Date.now() / 1000);
    const { wire, upstreamWire, request } = this.options;
    // A chat completion reaches the Responses shape through its Anthropic message.
    const converted =
      wire === 'chat'
        ? chatCompletionOf(parsed, now)
        : wire === 'responses'
          ? upstreamWire === 'chat'
            ? responseOfChat(parsed, now, request)
            : responseOfMessage(parsed, now, request)
          : anthropicMessageOf(parsed);
    return { status, text: JSON.stringify(converted) };
  }

  end(): void {
    const { status, text } = this.translated();
    this.response.writeHead(status, {
      ...returnedHeaders(this.upstream.headers, false),
      ...this.options.extraHeaders,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    });
    this.response.end(text);
  }

  stall(): void {
    this.response.destroy();
  }

  summary(complete: boolean): Summary {
    return this.body.summary(complete);
  }
}

function converterFor(options: TranslateOptions): StreamConverter {
  if (options.wire === 'chat') return new AnthropicToChat(options.includeUsage);
  if (options.wire !== 'responses') return new ChatToAnthropic();
  const { request } = options;
  return options.upstreamWire === 'chat'
    ? new ChatToResponses(request)
    : new AnthropicToResponses(request);
}

/** A stream converted event by event; the span reads the upstream's events. */
class TranslatedEvents implements Sink {
  private readonly scanner: EventScanner;
  private readonly converter: StreamConverter;
  private readonly response: ServerResponse;

  constructor(response: ServerResponse, options: TranslateOptions) {
    this.scanner = new EventScanner(options.upstreamWire);
    this.converter = converterFor(options);
    this.response = response;
  }

  write(chunk: Buffer): void {
    const events = this.scanner.push(chunk);
    if (events === undefined) return;
    let out = '';
    for (const event of events) {
      this.scanner.scan(event);
      out += this.converter.event(event);
    }
    if (out !== '') this.response.write(out);
  }

  end(): void {
    this.response.end(this.converter.end());
  }

  stall(type: string, message: string): void {
    // Through the converter: a Responses stream's `response.failed` and numbered `error` event.
    this.response.end(this.converter.fail(type, message));
  }

  summary(): Summary {
    const { summary } = this.scanner;
    // A stream cut short is an error for the span too (the app got an error event).
    if (!this.converter.cutShort || summary.streamError !== undefined) return summary;
    return { ...summary, streamError: CUT_SHORT };
  }
}

/** The sink of an answer in the other format (the relay calls it when the wires differ). */
export function translatingSink(
  upstream: AnswerHead,
  response: ServerResponse,
  sse: boolean,
  options: TranslateOptions,
): Sink {
  return sse
    ? new TranslatedEvents(response, options)
    : new TranslatedBody(upstream, response, options);
}
