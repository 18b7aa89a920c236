import type { Logger } from 'pino';
import { backoffDelay, type BackoffOptions } from './backoff.ts';
import type { ClientMetrics } from './metrics.ts';

/** What is known of the connection to one broker address. */
interface Link {
  state: 'up' | 'idle' | 'down';
  /** When the link went down (ms since epoch). */
  since: number;
  probes: number;
  probe: NodeJS.Timeout | undefined;
}

export interface BrokerLinksSettings {
  readonly log: Logger | undefined;
  readonly metrics: ClientMetrics;
  readonly backoff: BackoffOptions;
  /** Tries to connect to `address` (success and failure come back through `opened` and `failed`). */
  readonly reconnect: (address: string) => void;
  /** The node id of the broker at `address`, as the latest metadata names it. */
  readonly nodeIdOf: (address: string) => number | undefined;
}

/**
 * The state of each broker connection as an operator sees it: one warning when a broker kgate was
 * connected to is lost, one info line when it is back, with how long it was down, and
 * `kgate_kafka_client_broker_up` in between. Requests fail and are retried many times during an
 * outage; this says it once. A lost broker is probed with backoff until it answers, so the
 * recovery is seen (and timed) even when no request needs that broker any more (its partitions'
 * leadership moved elsewhere). A connection a broker closes while it carried nothing is not an
 * outage (brokers close idle connections); a failed attempt to reopen it is.
 */
export class BrokerLinks {
  readonly #settings: BrokerLinksSettings;
  readonly #links = new Map<string, Link>();
  #closed = false;

  constructor(settings: BrokerLinksSettings) {
    this.#settings = settings;
  }

  /** Whether the connection to `address` is known to be down. */
  isDown(address: string): boolean {
    return this.#links.get(address)?.state === 'down';
  }

  /** A connection to `address` finished its handshake. */
  opened(address: string): void {
    const link = this.#links.get(address);
    if (link?.state === 'down') {
      this.#settings.log?.info(
        { broker: address, ...this.#node(address), downMs: Date.now() - link.since },
        'broker connection restored',
      );
    }
    if (link?.probe !== undefined) clearTimeout(link.probe);
    this.#links.set(address, { state: 'up', since: 0, probes: 0, probe: undefined });
    if (link?.state !== 'up') this.#settings.metrics.brokerState(address, true);
  }

  /** The connection to `address` closed, failing `pending` requests. */
  closed(address: string, error: Error, pending: number): void {
    const link = this.#links.get(address);
    if (link === undefined || link.state !== 'up') return;
    if (pending === 0) {
      link.state = 'idle';
      this.#settings.log?.debug({ broker: address, err: error }, 'idle broker connection closed');
      return;
    }
    this.#lost(address, link, error);
  }

  /** An attempt to connect to `address` failed. Only brokers connected to before count. */
  failed(address: string, error: Error): void {
    const link = this.#links.get(address);
    if (link === undefined) return;
    if (link.state === 'down') {
      this.#probe(address, link);
      return;
    }
    this.#lost(address, link, error);
  }

  close(): void {
    this.#closed = true;
    for (const link of this.#links.values()) if (link.probe !== undefined) clearTimeout(link.probe);
  }

  #lost(address: string, link: Link, error: Error): void {
    if (this.#closed) return;
    link.state = 'down';
    link.since = Date.now();
    link.probes = 0;
    this.#settings.metrics.brokerState(address, false);
    this.#settings.log?.warn(
      { broker: address, ...this.#node(address), err: error },
      'broker connection lost',
    );
    this.#probe(address, link);
  }

  #probe(address: string, link: Link): void {
    if (this.#closed || link.probe !== undefined) return;
    link.probe = setTimeout(
      () => {
        link.probe = undefined;
        if (!this.#closed && link.state === 'down') this.#settings.reconnect(address);
      },
      backoffDelay(link.probes++, this.#settings.backoff),
    );
    link.probe.unref();
  }

  #node(address: string): { nodeId?: number } {
    const nodeId = this.#settings.nodeIdOf(address);
    return nodeId === undefined ? {} : { nodeId };
  }
}
