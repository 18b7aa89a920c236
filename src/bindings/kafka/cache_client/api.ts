import type { Binding } from '../../../engine/binding.ts';
import type { AttachOptions, CachedTopic } from '../cache_server/api.ts';
import type { RecordViews } from './models.ts';
import type { CacheStream, OpenOptions } from './stream.ts';

/**
 * What a cache_client offers to north-side bindings (looked up through the engine as their exit):
 * merged streams, and attachments on which to look keys up (lookupKey) or read a stream up to now
 * (HeadReader). North-side bindings reach the cache through this and nothing else.
 */
export interface CacheClientApi {
  /** Opens a stream on `topic`; rejects when the topic cannot be served (unknown, not authorized). */
  open(topic: string, options?: OpenOptions): Promise<CacheStream>;
  /**
   * Attaches to `topic` through the cache_server serving it, for a request that looks keys up or
   * reads up to now on one attachment; the caller releases it. Rejects like open().
   */
  attach(topic: string, options?: AttachOptions): Promise<CachedTopic>;
  /**
   * Why no broker behind `topic` answers now, if none does: what a read that waited in vain for
   * the cache to catch up is answered with. Optional.
   */
  unreachable?(topic: string): string | undefined;
  /** The models of `topic` that key lookups on an attachment apply (lookupKey's `views`). Optional. */
  viewsFor?(topic: string): RecordViews | undefined;
}

export function isCacheClient(binding: Binding): binding is Binding & CacheClientApi {
  const candidate = binding as Partial<CacheClientApi>;
  return typeof candidate.open === 'function' && typeof candidate.attach === 'function';
}
