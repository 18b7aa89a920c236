/** The binding's options as the schema admits them. */
export interface HttpKafkaOptionsJson {
  readonly idempotency?: { readonly header: string };
  readonly correlation?: {
    readonly headers: { readonly 'reply-to'?: string; readonly 'correlation-id'?: string };
  };
}

/** The binding's options, read once; routes are compiled apart (routes.ts). */
export interface HttpKafkaOptions {
  /** Request header whose value is `${idempotencyKey}`; lower case. */
  readonly idempotencyHeader: string;
  /** Kafka header naming the reply topic on a request-reply produce. */
  readonly replyToHeader: string;
  /** Kafka header carrying the correlation id, on requests and on their replies. */
  readonly correlationIdHeader: string;
}

/** The binding's options that passed its schema, with Zilla's defaults applied. */
export function httpKafkaOptions(options: unknown): HttpKafkaOptions {
  const json = options as HttpKafkaOptionsJson;
  const headers = json.correlation?.headers;
  return {
    idempotencyHeader: (json.idempotency?.header ?? 'idempotency-key').toLowerCase(),
    replyToHeader: headers?.['reply-to'] ?? 'zilla:reply-to',
    correlationIdHeader: headers?.['correlation-id'] ?? 'zilla:correlation-id',
  };
}
