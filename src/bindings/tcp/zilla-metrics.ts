import type { Registry } from 'prom-client';
import type { BindingConfig } from '../../config/index.ts';
import { StreamPairMetrics } from '../../telemetry/stream-pair.ts';
import { zillaMetrics, type BindingSeries } from '../../telemetry/zilla-metrics.ts';

/**
 * The Zilla `stream.*` metrics of a `tcp server`: a connection is a received stream (what the
 * client sends) and a sent stream (what kgate sends back), opened together when it is accepted.
 * A connection that ends without a socket error closes both streams, whichever side ended it
 * first; one that ends in a socket error (a reset, a write after the peer left) is an error on both.
 * Bytes are added from the socket's own counts (see TcpServerMetrics), never per chunk.
 */
export class TcpStreamMetrics {
  readonly series: BindingSeries;
  readonly #streams: StreamPairMetrics;

  /** Undefined when the binding collects no Zilla metric. */
  static of(registry: Registry, config: BindingConfig): TcpStreamMetrics | undefined {
    if (config.metrics === undefined) return undefined;
    return new TcpStreamMetrics(zillaMetrics(registry).attach(config.name, config.metrics));
  }

  private constructor(series: BindingSeries) {
    this.series = series;
    this.#streams = new StreamPairMetrics(series);
  }

  opened(): void {
    this.#streams.opened();
  }

  /** The socket closed; `hadError` as its 'close' event says. */
  closed(hadError: boolean): void {
    this.#streams.closed(!hadError, !hadError);
  }

  bytes(received: number, sent: number): void {
    this.#streams.received(received);
    this.#streams.sent(sent);
  }
}
