/**
 * How long a request waits for Kafka when its route does not say (`kafka-timeout`): long enough
 * that a leader election or a broker restart costs no request, short enough that a client hears
 * why well before its own timeout.
 */
export const DEFAULT_KAFKA_TIMEOUT_SECONDS = 30;

/** A route's `kafka-timeout` (seconds, as the schema admits it) in milliseconds, with the default. */
export function kafkaTimeoutMs(value: unknown, where: string): number {
  if (value === undefined) return DEFAULT_KAFKA_TIMEOUT_SECONDS * 1000;
  if (typeof value !== 'number' || !(value > 0))
    throw new Error(`${where} must be a positive number of seconds`);
  return Math.round(value * 1000);
}
