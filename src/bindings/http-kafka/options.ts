import type { BindingConfig } from '../../config/index.ts';

const DEFAULT_IDEMPOTENCY_HEADER = 'idempotency-key';
const DEFAULT_REPLY_TO_HEADER = 'zilla:reply-to';
const DEFAULT_CORRELATION_ID_HEADER = 'zilla:correlation-id';

/** The binding's options, read once; routes are compiled apart (routes.ts). */
export interface HttpKafkaOptions {
  /** Request header whose value is `${idempotencyKey}`; lower case. */
  readonly idempotencyHeader: string;
  /** Kafka header naming the reply topic on a request-reply produce. */
  readonly replyToHeader: string;
  /** Kafka header carrying the correlation id, on requests and on their replies. */
  readonly correlationIdHeader: string;
}

export function httpKafkaOptions(config: BindingConfig): HttpKafkaOptions {
  const idempotency = config.options['idempotency'] as Record<string, unknown> | undefined;
  const header = idempotency?.['header'];
  const correlation = config.options['correlation'] as Record<string, unknown> | undefined;
  const names = correlation?.['headers'] as Record<string, unknown> | undefined;
  const replyTo = names?.['reply-to'];
  const correlationId = names?.['correlation-id'];
  return {
    idempotencyHeader: (typeof header === 'string' ? header : DEFAULT_IDEMPOTENCY_HEADER).toLowerCase(),
    replyToHeader: typeof replyTo === 'string' ? replyTo : DEFAULT_REPLY_TO_HEADER,
    correlationIdHeader: typeof correlationId === 'string' ? correlationId : DEFAULT_CORRELATION_ID_HEADER,
  };
}
