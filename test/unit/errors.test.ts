import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import {
  ERROR_CODES,
  errorCodeOf,
  httpStatusOf,
  isErrorCode,
  KgateError,
  statusOf,
  type ErrorCode,
} from '../../src/engine/errors.ts';
import { encodeError as encodeGeneric, type WireError } from '../../src/engine/wire-error.ts';
import { MessageTooLargeError, NotCaughtUpError } from '../../src/bindings/kafka/cache_client/index.ts';
import { IngestPausedError, TopicNotFoundError } from '../../src/bindings/kafka/cache_server/errors.ts';
import {
  AuthenticationError,
  ConnectionError,
  KafkaClientError,
  KafkaProtocolError,
  MalformedResponseError,
  OffsetOutOfRangeError,
  TlsError,
  UnsupportedVersionError,
} from '../../src/bindings/kafka/client/index.ts';
import { CODE_BY_BROKER_CODE } from '../../src/bindings/kafka/client/errors.ts';
import { decodeError, encodeError } from '../../src/bindings/kafka/threads/wire-error.ts';
import { HttpError } from '../../src/bindings/north.ts';
import { kafkaErrorCode } from '../../src/bindings/proxies/cache-clients.ts';

/** The status a proxy answers a failed cache call with. */
const proxyStatus = (error: unknown): number => statusOf(kafkaErrorCode(error));

/** `error` sent through a real MessagePort, as the worker's cache port carries it, and rebuilt. */
async function acrossThreads(error: unknown): Promise<Error> {
  const { port1, port2 } = new MessageChannel();
  try {
    const received = once(port2, 'message');
    port1.postMessage(encodeError(error));
    const [wire] = (await received) as [WireError];
    return decodeError(wire);
  } finally {
    port1.close();
    port2.close();
  }
}

function chainOf(error: unknown): unknown[] {
  const out: unknown[] = [];
  for (let at = error; at instanceof Error; at = at.cause) out.push(at);
  return out;
}

/** Everything a status, a retry decision or a log line reads from an error and its causes. */
function assertSameError(actual: unknown, expected: unknown): void {
  const a = chainOf(actual);
  const e = chainOf(expected);
  assert.equal(a.length, e.length, 'cause chain length');
  for (let i = 0; i < e.length; i++) {
    const x = a[i] as Error & Record<string, unknown>;
    const y = e[i] as Error & Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(x), Object.getPrototypeOf(y), `class at depth ${i}`);
    assert.equal(x.name, y.name);
    assert.equal(x.message, y.message);
    assert.equal(x.stack, y.stack);
    for (const field of ['code', 'retriable', 'brokerCode', 'errorName', 'staleMetadata', 'topic', 'errno'])
      assert.equal(x[field], y[field], `${field} at depth ${i}`);
  }
  assert.equal(httpStatusOf(actual), httpStatusOf(expected));
  assert.equal(proxyStatus(actual), proxyStatus(expected));
}

describe('error codes', () => {
  it('gives every code an HTTP status, a retriable flag and a meaning', () => {
    const codes = Object.keys(ERROR_CODES);
    assert.ok(codes.length > 0);
    for (const code of codes) {
      assert.ok(isErrorCode(code));
      assert.match(code, /^KGATE_[A-Z_]+$/);
      const spec = ERROR_CODES[code];
      assert.ok(Number.isInteger(spec.status) && spec.status >= 400 && spec.status <= 599, code);
      assert.equal(typeof spec.retriable, 'boolean', code);
      assert.ok(spec.meaning.length > 0, code);
      assert.equal(statusOf(code), spec.status);
    }
    assert.ok(!isErrorCode('ECONNRESET'));
    assert.ok(!isErrorCode('toString'));
  });

  it('is what docs/http-api.md lists per status', () => {
    const doc = readFileSync(new URL('../../docs/http-api.md', import.meta.url), 'utf8');
    let listed = 0;
    for (const row of doc.matchAll(/^\|\s+(\d{3}) \|.*\|(.*)\|$/gm)) {
      for (const [, code] of (row[2] ?? '').matchAll(/`(KGATE_[A-Z_]+)`/g)) {
        assert.ok(isErrorCode(code), `${code} is in the table`);
        assert.equal(statusOf(code), Number(row[1]), `${code} is answered with ${row[1]}`);
        listed++;
      }
    }
    assert.ok(listed >= 15, `${listed} codes listed`);
  });

  it('maps broker error codes onto the statuses they were answered with before', () => {
    const before: [number, number][] = [
      [2, 400], // CORRUPT_MESSAGE
      [3, 404], // UNKNOWN_TOPIC_OR_PARTITION
      [10, 413], // MESSAGE_TOO_LARGE
      [17, 400], // INVALID_TOPIC_EXCEPTION
      [18, 413], // RECORD_LIST_TOO_LARGE
      [29, 403], // TOPIC_AUTHORIZATION_FAILED
      [31, 403], // CLUSTER_AUTHORIZATION_FAILED
      [53, 403], // TRANSACTIONAL_ID_AUTHORIZATION_FAILED
      [87, 400], // INVALID_RECORD
      [100, 404], // UNKNOWN_TOPIC_ID
      // 403 before because their names matched /AUTHORIZATION_FAILED/; now by code.
      [30, 403], // GROUP_AUTHORIZATION_FAILED
      [65, 403], // DELEGATION_TOKEN_AUTHORIZATION_FAILED
      // Unmapped: 503 when another attempt may pass, else 502.
      [7, 503], // REQUEST_TIMED_OUT
      [6, 503], // NOT_LEADER_OR_FOLLOWER
      [45, 502], // OUT_OF_ORDER_SEQUENCE_NUMBER
      [58, 502], // SASL_AUTHENTICATION_FAILED
      [9999, 502],
    ];
    for (const [brokerCode, status] of before) {
      const error = new KafkaProtocolError(brokerCode, 'produce to t');
      assert.equal(error.status, status, `broker code ${brokerCode}`);
      assert.equal(proxyStatus(error), status, `broker code ${brokerCode}`);
      assert.equal(error.brokerCode, brokerCode);
    }
    for (const [brokerCode, code] of CODE_BY_BROKER_CODE)
      assert.equal(new KafkaProtocolError(brokerCode, 'x').code, code);
  });

  it("gives the Kafka client's errors the codes their kind stands for", () => {
    const cases: [Error, ErrorCode][] = [
      [new ConnectionError('connection to b:9092 closed'), 'KGATE_KAFKA_UNAVAILABLE'],
      [new MalformedResponseError('bad bytes'), 'KGATE_KAFKA_UNAVAILABLE'],
      [new AuthenticationError('SASL authentication failed'), 'KGATE_KAFKA_AUTHENTICATION_FAILED'],
      [new TlsError('certificate not trusted'), 'KGATE_KAFKA_TLS_FAILED'],
      [new UnsupportedVersionError('Fetch v4 is too old'), 'KGATE_KAFKA_FAILED'],
      [new OffsetOutOfRangeError('t', 0, 5n, 7n, 9n), 'KGATE_KAFKA_FAILED'],
      [new KafkaClientError('x: aborted', false), 'KGATE_KAFKA_FAILED'],
      [new KafkaClientError('x', true), 'KGATE_KAFKA_UNAVAILABLE'],
    ];
    for (const [error, code] of cases) {
      assert.ok(error instanceof KgateError);
      assert.equal(errorCodeOf(error), code, error.name);
    }
  });
});

describe('statuses chosen by code', () => {
  it('answers every case kafkaErrorStatus handled with the status it answered', () => {
    assert.equal(proxyStatus(new MessageTooLargeError('t', 10, 5)), 413);
    assert.equal(proxyStatus(new MessageTooLargeError('t', 10, 5, 'the staging budget')), 413);
    assert.equal(proxyStatus(new KafkaProtocolError(29, 'produce')), 403);
    assert.equal(proxyStatus(new Error('wrapped', { cause: new KafkaProtocolError(3, 'metadata') })), 404);
    assert.equal(proxyStatus(new KafkaProtocolError(7, 'produce')), 503);
    assert.equal(proxyStatus(new Error('something else')), 502);
    // Once matched by their wording, now by their code.
    assert.equal(proxyStatus(new TopicNotFoundError('orders')), 404);
    assert.equal(
      proxyStatus(
        new Error('topic "orders": topic orders: TOPIC_AUTHORIZATION_FAILED (29)', {
          cause: new KafkaProtocolError(29, 'topic orders'),
        }),
      ),
      403,
    );
    // A retriable client error anywhere under uncoded wrappers.
    assert.equal(proxyStatus(new Error('outer', { cause: new ConnectionError('closed') })), 503);
    assert.equal(
      proxyStatus(
        new AuthenticationError('failed', { cause: new KafkaProtocolError(58, 'SaslAuthenticate') }),
      ),
      502,
    );
    assert.equal(proxyStatus(new TlsError('untrusted')), 502);
  });

  it('reads no status from message text', () => {
    // Each message matched one of the old patterns; the code (or its absence) decides now.
    assert.equal(proxyStatus(new ConnectionError('topic "x" does not exist, they say')), 503);
    assert.equal(
      proxyStatus(new KafkaClientError('UNKNOWN_TOPIC_OR_PARTITION in the text only', false)),
      502,
    );
    assert.equal(proxyStatus(new ConnectionError('not authorized to connect')), 503);
    assert.equal(proxyStatus(new Error('unknown topic')), 502);
    assert.equal(proxyStatus(new Error('TOPIC_AUTHORIZATION_FAILED')), 502);
    assert.equal(proxyStatus(new KafkaProtocolError(7, 'topic does not exist', 'not authorized')), 503);
    assert.equal(httpStatusOf(new Error('does not exist')), 500);
  });

  it('takes the outermost code along the cause chain and passes over codes not in the table', () => {
    const inner = new KafkaProtocolError(3, 'metadata');
    assert.equal(
      errorCodeOf(new HttpError('KGATE_NOT_CAUGHT_UP', 'slow', { cause: inner })),
      'KGATE_NOT_CAUGHT_UP',
    );
    const system = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    assert.equal(errorCodeOf(new Error('outer', { cause: system })), undefined);
    assert.equal(httpStatusOf(system), 500);
    assert.equal(httpStatusOf(system, 'KGATE_KAFKA_UNAVAILABLE'), 503);
    assert.equal(httpStatusOf('not an error'), 500);
    assert.equal(new HttpError('KGATE_METHOD_NOT_ALLOWED', 'GET only').status, 405);
    assert.equal(new NotCaughtUpError('t', 30_000).status, 504);
    assert.equal(new IngestPausedError().status, 503);
  });
});

describe('errors across threads', () => {
  it('keeps class, code, status, retriable, broker code, stack and causes through a port', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9092'), {
      code: 'ECONNREFUSED',
      errno: -111,
    });
    const errors: Error[] = [
      new KafkaClientError('Metadata: aborted', false, {
        cause: new Error('the client closed the connection'),
      }),
      new ConnectionError('connection to b:9092 failed', { cause: refused }),
      new MalformedResponseError('malformed Fetch v12 response', { cause: new RangeError('out of bounds') }),
      new AuthenticationError('SASL authentication failed', {
        cause: new KafkaProtocolError(58, 'SaslAuthenticate', 'bad password'),
      }),
      new TlsError('certificate not trusted', { cause: refused }),
      new UnsupportedVersionError('broker b:9092 rejected every ApiVersions version'),
      new KafkaProtocolError(29, 'produce to orders'),
      new KafkaProtocolError(6, 'Fetch from b:9092'),
      new OffsetOutOfRangeError('orders', 1, 5n, 7n, 9n),
      new TopicNotFoundError('orders'),
      new IngestPausedError(),
      new Error('topic "orders": TOPIC_AUTHORIZATION_FAILED', {
        cause: new KafkaProtocolError(29, 'topic orders'),
      }),
      new TypeError('not a function'),
    ];
    for (const error of errors) assertSameError(await acrossThreads(error), error);

    const offsets = (await acrossThreads(
      new OffsetOutOfRangeError('orders', 1, 5n, 7n, 9n),
    )) as OffsetOutOfRangeError;
    assert.ok(offsets instanceof OffsetOutOfRangeError);
    assert.deepEqual(
      [offsets.requested, offsets.earliest, offsets.latest, offsets.partition],
      [5n, 7n, 9n, 1],
    );

    const protocol = await acrossThreads(new KafkaProtocolError(29, 'produce to orders'));
    assert.ok(protocol instanceof KafkaProtocolError);
    assert.equal(protocol.brokerCode, 29);
    assert.equal(protocol.code, 'KGATE_NOT_AUTHORIZED');
    assert.equal(protocol.retriable, false);
    assert.equal(protocol.status, 403);
  });

  it('rebuilds a coded error of a class it was not given as a KgateError with the same code', async () => {
    const tooLarge = new MessageTooLargeError('orders', 10, 5);
    const rebuilt = await acrossThreads(new Error('producing failed', { cause: tooLarge }));
    const cause = rebuilt.cause;
    assert.ok(cause instanceof KgateError);
    assert.equal(cause.name, 'MessageTooLargeError');
    assert.equal(cause.code, 'KGATE_MESSAGE_TOO_LARGE');
    assert.equal((cause as KgateError & { limit?: number }).limit, 5);
    assert.equal(cause.stack, tooLarge.stack);
    assert.equal(proxyStatus(rebuilt), 413);
  });

  it('sends a thrown value that is no Error as one, and stops at a cycle', async () => {
    const rebuilt = await acrossThreads('plain text');
    assert.equal(rebuilt.message, 'plain text');
    assert.equal(proxyStatus(rebuilt), 502);
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    a.cause = b;
    const wire = encodeGeneric(a);
    let depth = 0;
    for (let at: WireError | undefined = wire; at !== undefined; at = at.cause) depth++;
    assert.equal(depth, 8);
  });

  it('leaves errors structured-cloneable, before and after a crossing', async () => {
    const original = new KafkaProtocolError(3, 'metadata');
    const cloned = structuredClone(original);
    assert.equal(cloned.message, original.message);
    const rebuilt = await acrossThreads(new Error('outer', { cause: new TopicNotFoundError('orders') }));
    const again = structuredClone(rebuilt);
    assert.equal(again.message, 'outer');
  });
});
