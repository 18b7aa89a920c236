/** The binding's options as the schema admits them. */
export interface HttpKafkaOptionsJson {
  readonly idempotency?: { readonly header: string };
  readonly correlation?: {
    readonly headers: { readonly 'reply-to'?: string; readonly 'correlation-id'?: string };
  };
  readonly limits?: { readonly 'snapshot-reads'?: number; readonly waits?: number };
}

/** Bounds on what the binding's fetches hold at once. */
export interface HttpKafkaLimits {
  /** Topic reads for fetch answers in progress, over every route. */
  readonly snapshotReads: number;
  /** Fetch requests holding a `Prefer: wait`. */
  readonly waits: number;
}

export const DEFAULT_HTTP_KAFKA_LIMITS: HttpKafkaLimits = {
  // Each may build a merged document of up to 16 MiB, a few times that while it is built.
  snapshotReads: 8,
  waits: 10_000,
};

/** The binding's options, read once; routes are compiled apart (routes.ts). */
export interface HttpKafkaOptions {
  /** Request header whose value is `${idempotencyKey}`; lower case. */
  readonly idempotencyHeader: string;
  /** Kafka header naming the reply topic on a request-reply produce. */
  readonly replyToHeader: string;
  /** Kafka header carrying the correlation id, on requests and on their replies. */
  readonly correlationIdHeader: string;
  readonly limits: HttpKafkaLimits;
}

/** The binding's options that passed its schema, with Zilla's defaults applied. */
export function httpKafkaOptions(options: unknown): HttpKafkaOptions {
  const json = options as HttpKafkaOptionsJson;
  const headers = json.correlation?.headers;
  return {
    idempotencyHeader: (json.idempotency?.header ?? 'idempotency-key').toLowerCase(),
    replyToHeader: headers?.['reply-to'] ?? 'zilla:reply-to',
    correlationIdHeader: headers?.['correlation-id'] ?? 'zilla:correlation-id',
    limits: {
      snapshotReads: json.limits?.['snapshot-reads'] ?? DEFAULT_HTTP_KAFKA_LIMITS.snapshotReads,
      waits: json.limits?.waits ?? DEFAULT_HTTP_KAFKA_LIMITS.waits,
    },
  };
}
