import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { BindingConfig } from '../../config/index.ts';
import { StreamPairMetrics } from '../../telemetry/stream-pair.ts';
import { zillaMetrics, type Log2Histogram, type Scalar } from '../../telemetry/zilla-metrics.ts';

/**
 * What an `http server` counts of each request for the Zilla metrics its `telemetry` selects
 * (`http.*`, `stream.*`). The request is the received stream, its response the sent stream: kgate
 * answers every request it takes, so both open when the request arrives and close with the
 * exchange. Each event is an addition to a number kept for the binding; sizes are taken from
 * `Content-Length` as Zilla takes them, and a body without one (chunked, an event stream) is not
 * measured, since counting it would cost a call per chunk.
 */
export class HttpExchangeMetrics {
  readonly #active: Scalar | undefined;
  readonly #duration: Log2Histogram | undefined;
  readonly #requestSize: Log2Histogram | undefined;
  readonly #responseSize: Log2Histogram | undefined;
  readonly #streams: StreamPairMetrics;

  /** Undefined when the binding collects no Zilla metric, so that a request pays nothing. */
  static of(registry: Registry, config: BindingConfig): HttpExchangeMetrics | undefined {
    if (config.metrics === undefined) return undefined;
    return new HttpExchangeMetrics(registry, config.name, config.metrics);
  }

  private constructor(registry: Registry, binding: string, metrics: BindingConfig['metrics'] & object) {
    const series = zillaMetrics(registry).attach(binding, metrics);
    this.#active = series.scalar('http.active.requests');
    this.#duration = series.histogram('http.duration');
    this.#requestSize = series.histogram('http.request.size');
    this.#responseSize = series.histogram('http.response.size');
    this.#streams = new StreamPairMetrics(series);
  }

  /** A request arrived. */
  begin(): void {
    if (this.#active !== undefined) this.#active.value++;
    this.#streams.opened();
  }

  /**
   * The exchange closed `ms` after the request arrived. A request whose body did not arrive whole
   * ended in an error on the received stream, a response not ended in one on the sent stream;
   * only an exchange both sides ended has a duration, as in Zilla.
   */
  end(req: IncomingMessage, res: ServerResponse, ms: number): void {
    if (this.#active !== undefined) this.#active.value--;
    const received = req.complete;
    const answered = res.writableEnded;
    this.#streams.closed(received, answered);
    if (received && (this.#requestSize !== undefined || this.#streams.countsReceivedData)) {
      const bytes = requestBytes(req);
      if (bytes !== undefined) {
        this.#requestSize?.observe(bytes);
        this.#streams.received(bytes);
      }
    }
    if (answered && (this.#responseSize !== undefined || this.#streams.countsSentData)) {
      const bytes = responseBytes(req, res);
      if (bytes !== undefined) {
        this.#responseSize?.observe(bytes);
        this.#streams.sent(bytes);
      }
    }
    if (received && answered) this.#duration?.observe(ms);
  }
}

function lengthOf(value: unknown): number | undefined {
  const length = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : NaN;
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/** The request body's length, when known without counting its chunks. */
export function requestBytes(req: IncomingMessage): number | undefined {
  const declared = req.headers['content-length'];
  if (declared !== undefined) return lengthOf(declared);
  if (req.httpVersionMajor === 2) {
    // An HTTP/2 request without Content-Length has no body only if its HEADERS frame ended the stream.
    const stream: unknown = 'stream' in req ? req.stream : undefined;
    const ended = typeof stream === 'object' && stream !== null && 'endAfterHeaders' in stream;
    return ended && stream.endAfterHeaders === true ? 0 : undefined;
  }
  // HTTP/1.1 without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3).
  return req.headers['transfer-encoding'] === undefined ? 0 : undefined;
}

/** The response body's length, when known without counting its chunks. */
export function responseBytes(req: IncomingMessage, res: ServerResponse): number | undefined {
  const declared = res.getHeader('content-length');
  if (declared !== undefined) return lengthOf(declared);
  if (req.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304) return 0;
  return undefined;
}
