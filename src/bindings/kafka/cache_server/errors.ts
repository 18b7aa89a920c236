import { KgateError } from '../../../engine/errors.ts';

// The cache_server's own errors; they reach worker threads and clients, so they carry codes.

/** The topic is not in the cluster. */
export class TopicNotFoundError extends KgateError {
  readonly topic: string;
  constructor(topic: string) {
    super('KGATE_TOPIC_NOT_FOUND', `topic "${topic}" does not exist`);
    this.topic = topic;
  }
}

/**
 * The topic an attachment or a produce was for was deleted (and perhaps created again, which is
 * another topic under the same name): the cache of it is dropped, and what was read of it ends.
 */
export class TopicDeletedError extends TopicNotFoundError {
  constructor(topic: string, recreated = false) {
    super(topic);
    this.message = recreated
      ? `topic "${topic}" was deleted and created again`
      : `topic "${topic}" was deleted`;
  }
}

/** An append refused, uncommitted, because ingest is paused. */
export class IngestPausedError extends KgateError {
  constructor() {
    super('KGATE_INGEST_PAUSED', 'cache ingest is paused: the disk is full');
  }
}
