import type { Logger } from 'pino';
import type { CachedTopic } from './api.ts';

/** Often enough to show a warm-up moving, rarely enough not to flood the log of a long one. */
const WARMUP_REPORT_MS = 5_000;

export interface WarmupHost {
  readonly log: Logger;
  /** The bootstrap topics, whose progress is reported until each has caught up. */
  readonly topics: readonly string[];
  /** The topic as followed now; undefined when it is not, or its metadata is not known yet. */
  handle(topic: string): CachedTopic | undefined;
}

/** Where a bootstrap topic's warm-up stood at the last report. */
interface WarmupMark {
  readonly fetched: bigint;
  readonly at: number;
}

/**
 * Logs how far each bootstrap topic has been fetched, with a rate and an estimate of the time
 * left, every few seconds until it has caught up with the broker: a cache filling from a long
 * topic after a first start would otherwise say nothing for minutes.
 */
export class WarmupReports {
  readonly #host: WarmupHost;
  readonly #marks = new Map<string, WarmupMark>();
  #timer: NodeJS.Timeout | undefined;

  constructor(host: WarmupHost) {
    this.#host = host;
  }

  start(): void {
    this.#marks.clear();
    const pending = new Set(this.#host.topics);
    if (pending.size === 0) return;
    this.#timer = setInterval(() => {
      for (const topic of pending) if (this.#report(topic)) pending.delete(topic);
      if (pending.size === 0) clearInterval(this.#timer);
    }, WARMUP_REPORT_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /**
   * Offsets fetched and offsets the broker has, summed over the topic's partitions; undefined
   * until every partition is known and fed, since a partition not fed yet has no watermark.
   */
  #fetched(topic: string): { fetched: bigint; highWatermark: bigint } | undefined {
    const handle = this.#host.handle(topic);
    if (handle === undefined) return undefined;
    const partitions = handle.partitions();
    if (partitions.length === 0 || !partitions.every((p) => handle.isReady(p))) return undefined;
    let fetched = 0n;
    let highWatermark = 0n;
    for (const p of partitions) {
      const store = handle.store(p);
      highWatermark += store.highWatermark;
      fetched += store.nextOffset < store.highWatermark ? store.nextOffset : store.highWatermark;
    }
    return { fetched, highWatermark };
  }

  /** Logs one bootstrap topic's progress; true once it has caught up (and said so). */
  #report(topic: string): boolean {
    const log = this.#host.log;
    const now = Date.now();
    const position = this.#fetched(topic);
    const mark = this.#marks.get(topic);
    if (position === undefined) {
      log.info({ topic }, 'bootstrap topic waiting for its partitions');
      return false;
    }
    const { fetched, highWatermark } = position;
    if (fetched >= highWatermark) {
      log.info(
        { topic, cached: Number(fetched), highWatermark: Number(highWatermark) },
        'bootstrap topic caught up',
      );
      this.#marks.delete(topic);
      return true;
    }
    // The first sight of a topic is only a baseline: offsets resumed from disk are no rate.
    const rate =
      mark === undefined
        ? 0
        : Math.max(Number(fetched - mark.fetched), 0) / Math.max((now - mark.at) / 1000, 0.001);
    this.#marks.set(topic, { fetched, at: now });
    log.info(
      {
        topic,
        cached: Number(fetched),
        highWatermark: Number(highWatermark),
        rate: Math.round(rate),
        etaSeconds: rate > 0 ? Math.ceil(Number(highWatermark - fetched) / rate) : null,
      },
      'bootstrap topic warming up',
    );
    return false;
  }
}
