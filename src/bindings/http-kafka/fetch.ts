import type { CachedTopic, CacheMessage, KeyLookup } from '../kafka/cache_client/index.ts';
import {
  checkPositions,
  evictedHeads,
  HeadReader,
  lookupKey,
  NotCaughtUpError,
  UpToNow,
} from '../kafka/cache_client/index.ts';
import { HttpError } from '../north.ts';
import { kafkaErrorCode, messageOf, type CacheClient } from '../proxies/cache-clients.ts';
import { buildFilters } from '../proxies/filter-templates.ts';
import { etagOf, parseIfNoneMatch, progressFromIfNoneMatch } from './etag.ts';
import { attachTopic, headerText, notCaughtUp, openStream, overloaded, type Exchange } from './exchange.ts';
import { LatestMessage, MergedDocument, snapshotOf, writeSnapshot } from './fetched.ts';
import type { HttpKafkaMetrics } from './metrics.ts';
import { pinnedKey, type PinnedKey } from './pinned-key.ts';
import { parsePrefer } from './prefer.ts';
import type { FetchRoute } from './routes.ts';
import {
  SnapshotReadsExhausted,
  type HeldSnapshot,
  type SharedSnapshots,
  type Snapshot,
} from './snapshots.ts';

// Fetch routes: GET (and HEAD) answered from the cache, up to now, with the progress read up to
// as the ETag; If-None-Match and Prefer: wait resume from that progress.

/** What the fetches of one binding share: answers read once, and the bound on parked waits. */
export interface FetchContext {
  readonly snapshots: SharedSnapshots;
  readonly waits: WaitSlots;
  readonly metrics: HttpKafkaMetrics;
}

/** A bound on the requests holding a `Prefer: wait` at once. */
export class WaitSlots {
  readonly max: number;
  #taken = 0;

  constructor(max: number) {
    this.max = max;
  }

  get taken(): number {
    return this.#taken;
  }

  /** A slot, and the function giving it back (once); undefined when every slot is taken. */
  take(): (() => void) | undefined {
    if (this.#taken >= this.max) return undefined;
    this.#taken++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#taken--;
    };
  }
}

/**
 * The Content-Type a 304 of a merged route carries: the one its 200 has, known without the
 * document (Zilla sends it; a 304 may carry what the 200 would, RFC 9110 15.4.5).
 */
function mergedType(route: FetchRoute): Record<string, string> {
  return route.merge === undefined ? {} : { 'Content-Type': route.merge };
}

/** Answers GET or HEAD on a fetch route. */
export async function handleFetch(x: Exchange, route: FetchRoute, context: FetchContext): Promise<void> {
  const { req, res, client, params, gone } = x;
  const filters = buildFilters(route.filters, params, x.authorization);
  const ifNoneMatch = headerText(req.headers['if-none-match']);
  const wait = parsePrefer(req.headers.prefer).wait ?? 0;
  const topic = await attachTopic(client, route.topic, { signal: gone, timeoutMs: route.kafkaTimeoutMs });
  let endWait: (() => void) | undefined;
  try {
    const since = currentProgress(topic, progressFromIfNoneMatch(ifNoneMatch));
    if (since === undefined && parseIfNoneMatch(ifNoneMatch).includes('*')) {
      // Any current representation matches `*`, and a topic always has one (possibly empty).
      res.writeHead(304, mergedType(route));
      res.end();
      return;
    }
    // A request that may be held (a conditional one, or one that waits for a first match) holds
    // one of the binding's waits for as long as it is served.
    if (wait > 0 && (since !== undefined || route.merge === undefined)) {
      const slot = context.waits.take();
      if (slot === undefined) {
        context.metrics.limited('waits');
        throw overloaded(res, `more than ${context.waits.max} requests waiting at once (limits.waits)`);
      }
      const ended = context.metrics.waitStarted();
      endWait = () => {
        slot();
        ended();
      };
    }
    // On a compacted topic a filter pinning one key selects that key's newest record: the key
    // index finds it without reading the topic.
    const pinned = topic.compacted ? pinnedKey(filters) : undefined;
    if (pinned !== undefined) {
      await fetchByKey(x, route, topic, pinned, since, wait, context.metrics);
      return;
    }
    if (since !== undefined) {
      const unchanged = await answered(route, unchangedSince(x, topic, route, filters, since, wait));
      if (unchanged === 'gone') return;
      if (unchanged !== undefined) {
        res.writeHead(304, { ...mergedType(route), ETag: etagOf(unchanged) });
        res.end();
        return;
      }
    }
    const until = Date.now() + (since === undefined && route.merge === undefined ? wait * 1000 : 0);
    for (;;) {
      const held = await answered(route, sharedSnapshot(x, route, topic, filters, context));
      if (held === 'gone') return;
      const snapshot = held.snapshot;
      const remaining = until - Date.now();
      // Nothing matches yet and the client asked to wait: wait for a change, then read again.
      if (snapshot.body === undefined && remaining > 0) {
        held.release();
        const unchanged = await answered(
          route,
          unchangedSince(x, topic, route, filters, snapshot.progress, remaining / 1000),
        );
        if (unchanged === 'gone' || gone.aborted) return;
        // Unchanged means the wait ran out, or shutdown cut it short: the 404 stands.
        if (unchanged === undefined) continue;
      }
      try {
        await writeSnapshot(res, route, snapshot, gone, context.metrics.partialAnswer);
      } finally {
        held.release();
      }
      return;
    }
  } finally {
    endWait?.();
    topic.release();
  }
}

/**
 * The progress of an If-None-Match tag, or undefined when it cannot describe the topic as it is:
 * it names a partition the topic does not have, or an offset past a partition's end. Such a tag
 * is made up, or from before the topic was deleted and created again; either way it matches
 * nothing the topic holds, so the request is answered in full, with an ETag of this topic.
 */
function currentProgress(
  topic: CachedTopic,
  since: Map<number, bigint> | undefined,
): Map<number, bigint> | undefined {
  if (since === undefined) return undefined;
  const { unknown, ahead } = checkPositions(topic, since);
  return unknown.length === 0 && ahead.length === 0 ? since : undefined;
}

/**
 * A read that failed on its way (its topic deleted: the stream ended with KGATE_TOPIC_NOT_FOUND)
 * is answered with its code, as a failure to open the stream is.
 */
async function answered<T>(route: FetchRoute, reading: Promise<T>): Promise<T> {
  try {
    return await reading;
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(kafkaErrorCode(error), `topic ${route.topic}: ${messageOf(error)}`, { cause: error });
  }
}

/**
 * A fetch of one key from the key index, with the same answers, ETags and waits as a stream
 * read: the ETag is the progress a stream reading the topic up to now would have, and a
 * conditional request is unchanged unless a record of the key matching the filter came since.
 */
async function fetchByKey(
  x: Exchange,
  route: FetchRoute,
  topic: CachedTopic,
  pinned: PinnedKey,
  since: Map<number, bigint> | undefined,
  waitSeconds: number,
  metrics: HttpKafkaMetrics,
): Promise<void> {
  const { res, gone } = x;
  const until = Date.now() + waitSeconds * 1000;
  // Made for the lookups that wait: composing it for every GET, most of which wait for nothing,
  // cost weak references the garbage collector then has to clear.
  let waitSignal: AbortSignal | undefined;
  const waitEnded = (): boolean => gone.aborted || x.draining.aborted;
  const views = x.client.viewsFor?.(route.topic);
  const lookup = async (after: ReadonlyMap<number, bigint> | undefined): Promise<KeyLookup> => {
    const waitMs = until - Date.now();
    if (after !== undefined && waitMs > 0) waitSignal ??= AbortSignal.any([gone, x.draining]);
    try {
      // On the attachment the fetch already holds: attaching again per request costs more than the lookup.
      return await lookupKey(topic, pinned.key, {
        ...(pinned.conditions.length === 0 ? {} : { conditions: pinned.conditions }),
        ...(after === undefined ? {} : { since: after }),
        ...(after === undefined || waitMs <= 0 || waitSignal === undefined ? {} : { waitMs, waitSignal }),
        catchUpMs: route.kafkaTimeoutMs,
        signal: gone,
        ...(views === undefined ? {} : { views }),
      });
    } catch (error) {
      if (error instanceof NotCaughtUpError) throw notCaughtUp(x.client, route.topic, route.kafkaTimeoutMs);
      throw new HttpError(kafkaErrorCode(error), `topic ${route.topic}: ${messageOf(error)}`, {
        cause: error,
      });
    }
  };
  let found: KeyLookup;
  try {
    found = await lookup(since);
    // An absent key with a wait asked for: the answer is the key once it appears.
    while (since === undefined && route.merge === undefined && found.message === null) {
      if (Date.now() >= until || waitEnded()) break;
      found = await lookup(found.progress);
    }
  } catch (error) {
    if (gone.aborted) return;
    throw error;
  }
  if (gone.aborted) return;
  if (since !== undefined && !found.changed) {
    res.writeHead(304, { ...mergedType(route), ETag: etagOf(found.progress) });
    res.end();
    return;
  }
  const merged = route.merge === undefined ? undefined : new MergedDocument();
  const latest = new LatestMessage();
  if (found.message !== null) (merged ?? latest).add(found.message);
  // A key found is the key's latest record (eviction takes older ones); one not found may be
  // among the records evicted.
  const evicted = found.message === null ? evictedHeads(topic) : undefined;
  const snapshot = snapshotOf(route, found.progress, merged, latest, evicted);
  await writeSnapshot(res, route, snapshot, gone, metrics.partialAnswer);
}

/**
 * Resumes from the client's ETag: the progress when nothing matching arrived since (up to the
 * head, or up to `wait` seconds past it), undefined when something did. The 304 then carries the
 * newer progress as its ETag, so the client's next conditional request scans only what came after.
 */
async function unchangedSince(
  x: Exchange,
  topic: CachedTopic,
  route: FetchRoute,
  filters: ReturnType<typeof buildFilters>,
  since: ReadonlyMap<number, bigint>,
  waitSeconds: number,
): Promise<ReadonlyMap<number, bigint> | undefined | 'gone'> {
  const gone = x.gone;
  const stream = await openStream(x.client, route.topic, {
    ...(filters === undefined ? {} : { filters }),
    partitions: since,
    signal: gone,
    timeoutMs: route.kafkaTimeoutMs,
  });
  const reader = new HeadReader(stream, topic);
  let changed = false;
  try {
    const headBy = Date.now() + route.kafkaTimeoutMs;
    const step = await reader.step(headBy, true, gone);
    if (step.type === 'message') changed = true;
    else if (step.type === 'timeout') throw notCaughtUp(x.client, route.topic, route.kafkaTimeoutMs);
    else if (step.type === 'end') return 'gone';
    else if (waitSeconds > 0) {
      const signal = AbortSignal.any([gone, x.draining]);
      const waited = await reader.step(Date.now() + waitSeconds * 1000, false, signal);
      if (waited.type === 'message') changed = true;
      if (gone.aborted) return 'gone';
    }
  } finally {
    // A message the stream took as the wait ended counts: the progress includes it.
    if ((await reader.finish()) !== undefined) changed = true;
  }
  return changed ? undefined : reader.progress;
}

/**
 * The answer a read of the topic up to now gives this request, shared with every request that
 * wants the same one (see SharedSnapshots): a snapshot is current while the cache holds nothing
 * past what it read.
 */
async function sharedSnapshot(
  x: Exchange,
  route: FetchRoute,
  topic: CachedTopic,
  filters: ReturnType<typeof buildFilters>,
  context: FetchContext,
): Promise<HeldSnapshot | 'gone'> {
  let held: HeldSnapshot | 'gone';
  try {
    held = await context.snapshots.get(
      snapshotKey(route, filters),
      x.gone,
      (snapshot) =>
        snapshot.incarnation === incarnationOf(topic) &&
        new UpToNow(topic, 'read_committed').caughtUp(snapshot.progress),
      (signal) => readSnapshot(x.client, route, filters, signal),
    );
  } catch (error) {
    if (!(error instanceof SnapshotReadsExhausted)) throw error;
    context.metrics.limited('snapshot-reads');
    throw overloaded(x.res, error.message);
  }
  if (held !== 'gone' && held.shared) context.metrics.shared();
  return held;
}

const routeIds = new WeakMap<FetchRoute, number>();
let nextRouteId = 0;

/** Which answer a request wants: its route, and the filters its parameters make of the route's. */
function snapshotKey(route: FetchRoute, filters: ReturnType<typeof buildFilters>): string {
  let id = routeIds.get(route);
  if (id === undefined) {
    id = nextRouteId++;
    routeIds.set(route, id);
  }
  return `${id} ${JSON.stringify(filters ?? null)}`;
}

/**
 * What the topic holds up to now that matches, merged or latest as the route answers it. It reads
 * for every request that wants it, so it holds its own attachment and ends on `signal` alone.
 */
async function readSnapshot(
  client: CacheClient,
  route: FetchRoute,
  filters: ReturnType<typeof buildFilters>,
  signal: AbortSignal,
): Promise<Snapshot | 'gone'> {
  const topic = await attachTopic(client, route.topic, { signal, timeoutMs: route.kafkaTimeoutMs });
  const incarnation = incarnationOf(topic);
  try {
    // Historical on every topic: a fetch answers with what the topic holds, not what comes next.
    const stream = await openStream(client, route.topic, {
      ...(filters === undefined ? {} : { filters }),
      defaultOffset: 'historical',
      signal,
      timeoutMs: route.kafkaTimeoutMs,
    });
    const reader = new HeadReader(stream, topic);
    const merged = route.merge === undefined ? undefined : new MergedDocument();
    const latest = new LatestMessage();
    const take = (message: CacheMessage): void =>
      merged === undefined ? latest.add(message) : merged.add(message);
    try {
      const by = Date.now() + route.kafkaTimeoutMs;
      for (;;) {
        const step = await reader.step(by, true, signal);
        if (step.type === 'message') take(step.message);
        else if (step.type === 'end') return 'gone';
        else if (step.type === 'timeout') throw notCaughtUp(client, route.topic, route.kafkaTimeoutMs);
        else break;
      }
    } finally {
      const late = await reader.finish();
      if (late !== undefined) take(late);
    }
    // Looked at after the read, so that an eviction during it counts.
    return { ...snapshotOf(route, reader.progress, merged, latest, evictedHeads(topic)), incarnation };
  } finally {
    topic.release();
  }
}

/** The topic id the cache holds the topic under ('' while no partition of it is fed yet). */
function incarnationOf(topic: CachedTopic): string {
  const first = topic.partitions()[0];
  return first === undefined ? '' : topic.store(first).topicId;
}
