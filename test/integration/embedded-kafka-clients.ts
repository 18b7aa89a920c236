// Helpers for the embedded-Kafka integration tests: an independent client (@platformatic/kafka)
// to check what the brokers really hold, so the tests never verify Kafka with kgate itself.
import {
  Admin,
  Consumer,
  murmur2,
  Producer,
  type ConnectionOptions,
  type Message,
} from '@platformatic/kafka';
import { randomUUID } from 'node:crypto';

export type ClientSecurity = Pick<ConnectionOptions, 'sasl' | 'tls'>;

function brokers(bootstrap: string): string[] {
  return bootstrap.split(',');
}

export async function withAdmin<T>(
  bootstrap: string,
  use: (admin: Admin) => Promise<T>,
  security: ClientSecurity = {},
): Promise<T> {
  const admin = new Admin({
    clientId: 'embedded-kafka-test',
    bootstrapBrokers: brokers(bootstrap),
    connectTimeout: 5000,
    retries: 0,
    ...security,
  });
  try {
    return await use(admin);
  } finally {
    await admin.close().catch(() => undefined);
  }
}

export async function sendMessages(
  bootstrap: string,
  messages: { topic: string; key?: Buffer; value?: Buffer; partition?: number }[],
  security: ClientSecurity = {},
): Promise<void> {
  const producer = new Producer({
    clientId: 'embedded-kafka-test-producer',
    bootstrapBrokers: brokers(bootstrap),
    connectTimeout: 5000,
    retries: 5,
    acks: -1,
    ...security,
  });
  try {
    await producer.send({ messages });
  } finally {
    await producer.close().catch(() => undefined);
  }
}

/**
 * Reads `count` messages of `topic` from the beginning with a fresh consumer group, failing
 * after `timeoutMs` with what it got so far.
 */
export async function consumeMessages(
  bootstrap: string,
  topic: string,
  count: number,
  options: { timeoutMs?: number; security?: ClientSecurity } = {},
): Promise<Message[]> {
  const consumer = new Consumer({
    clientId: 'embedded-kafka-test-consumer',
    groupId: `embedded-kafka-test-${randomUUID()}`,
    bootstrapBrokers: brokers(bootstrap),
    connectTimeout: 5000,
    retries: 10,
    retryDelay: 500,
    maxWaitTime: 500,
    autocommit: false,
    ...options.security,
  });
  const received: Message[] = [];
  const timeoutMs = options.timeoutMs ?? 30_000;
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    const timer = setTimeout(() => {
      stream.destroy(
        new Error(`got ${received.length} of ${count} messages from ${topic} within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    try {
      for await (const message of stream) {
        received.push(message);
        if (received.length >= count) break;
      }
    } finally {
      clearTimeout(timer);
      await stream.close().catch(() => undefined);
    }
    return received;
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

/** Java's default partitioner for keyed records: toPositive(murmur2(key)) % partitions. */
export function javaPartition(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
