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

/** An append refused, uncommitted, because ingest is paused. */
export class IngestPausedError extends KgateError {
  constructor() {
    super('KGATE_INGEST_PAUSED', 'cache ingest is paused: the disk is full');
  }
}
