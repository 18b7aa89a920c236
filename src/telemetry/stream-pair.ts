import type { BindingSeries, Scalar } from './zilla-metrics.ts';

/**
 * Zilla's `stream.*` metrics of one exchange seen as two streams, what the client sends (received)
 * and what kgate sends back (sent), opened together and each closed or errored on its own. The
 * tcp server counts a connection this way and the http server a request; each `Scalar` is
 * undefined when the binding's `telemetry` does not select it, so a metric not collected costs a
 * comparison.
 */
export class StreamPairMetrics {
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

  constructor(series: BindingSeries) {
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

  /** Whether received bytes are counted, so a caller can skip working out how many there were. */
  get countsReceivedData(): boolean {
    return this.#dataReceived !== undefined;
  }

  get countsSentData(): boolean {
    return this.#dataSent !== undefined;
  }

  opened(): void {
    if (this.#opensReceived !== undefined) this.#opensReceived.value++;
    if (this.#opensSent !== undefined) this.#opensSent.value++;
    if (this.#activeReceived !== undefined) this.#activeReceived.value++;
    if (this.#activeSent !== undefined) this.#activeSent.value++;
  }

  /** Both streams ended: each with a close when it ended whole, with an error otherwise. */
  closed(receivedWhole: boolean, sentWhole: boolean): void {
    if (this.#activeReceived !== undefined) this.#activeReceived.value--;
    if (this.#activeSent !== undefined) this.#activeSent.value--;
    const received = receivedWhole ? this.#closesReceived : this.#errorsReceived;
    if (received !== undefined) received.value++;
    const sent = sentWhole ? this.#closesSent : this.#errorsSent;
    if (sent !== undefined) sent.value++;
  }

  received(bytes: number): void {
    if (this.#dataReceived !== undefined) this.#dataReceived.value += bytes;
  }

  sent(bytes: number): void {
    if (this.#dataSent !== undefined) this.#dataSent.value += bytes;
  }
}
