import type { Registry } from 'prom-client';
import type { BindingConfig } from '../../config/index.ts';
import { zillaMetrics, type BindingSeries, type Scalar } from '../../telemetry/zilla-metrics.ts';

/**
 * The Zilla `stream.*` metrics of a `tcp server`: a connection is a received stream (what the
 * client sends) and a sent stream (what kgate sends back), opened together when it is accepted.
 * A connection that ends without a socket error closes both streams, whichever side ended it
 * first; one that ends in a socket error (a reset, a write after the peer left) is an error on both.
 * Bytes are added from the socket's own counts (see TcpServerMetrics), never per chunk.
 */
export class TcpStreamMetrics {
  readonly series: BindingSeries;
  readonly #opensReceived: Scalar | undefined;
  readonly #opensSent: Scalar | undefined;
  readonly #activeReceived: Scalar | undefined;
  readonly #activeSent: Scalar | undefined;
  readonly #closesReceived: Scalar | undefined;
  readonly #closesSent: Scalar | undefined;
  readonly #errorsReceived: Scalar | undefined;
  readonly #errorsSent: Scalar | undefined;
  readonly #dataReceived: Scalar | undefined;
  readonly #dataSent: Scalar | undefined;

  /** Undefined when the binding collects no Zilla metric. */
  static of(registry: Registry, config: BindingConfig): TcpStreamMetrics | undefined {
    if (config.metrics === undefined) return undefined;
    return new TcpStreamMetrics(zillaMetrics(registry).attach(config.name, config.metrics));
  }

  private constructor(series: BindingSeries) {
    this.series = series;
    this.#opensReceived = series.scalar('stream.opens.received');
    this.#opensSent = series.scalar('stream.opens.sent');
    this.#activeReceived = series.scalar('stream.active.received');
    this.#activeSent = series.scalar('stream.active.sent');
    this.#closesReceived = series.scalar('stream.closes.received');
    this.#closesSent = series.scalar('stream.closes.sent');
    this.#errorsReceived = series.scalar('stream.errors.received');
    this.#errorsSent = series.scalar('stream.errors.sent');
    this.#dataReceived = series.scalar('stream.data.received');
    this.#dataSent = series.scalar('stream.data.sent');
  }

  opened(): void {
    if (this.#opensReceived !== undefined) this.#opensReceived.value++;
    if (this.#opensSent !== undefined) this.#opensSent.value++;
    if (this.#activeReceived !== undefined) this.#activeReceived.value++;
    if (this.#activeSent !== undefined) this.#activeSent.value++;
  }

  /** The socket closed; `hadError` as its 'close' event says. */
  closed(hadError: boolean): void {
    if (this.#activeReceived !== undefined) this.#activeReceived.value--;
    if (this.#activeSent !== undefined) this.#activeSent.value--;
    const received = hadError ? this.#errorsReceived : this.#closesReceived;
    if (received !== undefined) received.value++;
    const sent = hadError ? this.#errorsSent : this.#closesSent;
    if (sent !== undefined) sent.value++;
  }

  bytes(received: number, sent: number): void {
    if (this.#dataReceived !== undefined) this.#dataReceived.value += received;
    if (this.#dataSent !== undefined) this.#dataSent.value += sent;
  }
}
