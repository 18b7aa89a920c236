import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { etagOf, parseIfNoneMatch, progressFromIfNoneMatch } from '../../src/bindings/http-kafka/etag.ts';
import { MAX_WAIT_SECONDS, parsePrefer } from '../../src/bindings/http-kafka/prefer.ts';
import { statusOf } from '../../src/engine/errors.ts';
import { kafkaErrorCode } from '../../src/bindings/proxies/cache-clients.ts';
import { buildFilters, filterTemplates } from '../../src/bindings/proxies/filter-templates.ts';
import { decodeProgress, encodeProgress } from '../../src/bindings/proxies/progress-token.ts';
import {
  capturedParams,
  checkTemplate,
  expand,
  paramsLookup,
  TemplateError,
} from '../../src/bindings/proxies/templates.ts';
import { MessageTooLargeError } from '../../src/bindings/kafka/cache_client/index.ts';
import { KafkaProtocolError, KafkaWaitError } from '../../src/bindings/kafka/client/index.ts';
import { DEFAULT_KAFKA_TIMEOUT_SECONDS, kafkaTimeoutMs } from '../../src/bindings/proxies/kafka-timeout.ts';

const progress = (entries: [number, bigint][]): Map<number, bigint> => new Map(entries);

describe('http-kafka progress tokens and ETags', () => {
  it('round-trips progress through a token that needs no escaping', () => {
    const p = progress([
      [1, 40n],
      [0, 12n],
      [7, 9_007_199_254_740_993n],
    ]);
    const token = encodeProgress(p);
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeProgress(token), p);
    assert.equal(etagOf(p), `"${token}"`);
  });

  it('rejects tokens it did not make', () => {
    assert.equal(decodeProgress('not a token'), undefined);
    assert.equal(decodeProgress(Buffer.from('0:x').toString('base64url')), undefined);
    // Decodes to the same bytes but is not the canonical spelling.
    const token = encodeProgress(progress([[0, 1n]]));
    assert.equal(decodeProgress(`${token}A`), undefined);
  });

  it('parses If-None-Match lists, weak tags and *', () => {
    assert.deepEqual(parseIfNoneMatch(undefined), []);
    assert.deepEqual(parseIfNoneMatch('"a", W/"b" ,"c"'), ['a', 'b', 'c']);
    assert.deepEqual(parseIfNoneMatch('*'), ['*']);
    const etag = etagOf(progress([[0, 5n]]));
    assert.deepEqual(progressFromIfNoneMatch(`"other", W/${etag}`), progress([[0, 5n]]));
    assert.equal(progressFromIfNoneMatch('"other"'), undefined);
  });

  it('parses Prefer: wait and respond-async, capping the wait', () => {
    assert.deepEqual(parsePrefer(undefined), { respondAsync: false });
    assert.deepEqual(parsePrefer('wait=5'), { wait: 5, respondAsync: false });
    assert.deepEqual(parsePrefer('respond-async, wait=10'), { wait: 10, respondAsync: true });
    assert.deepEqual(parsePrefer(['handling=lenient', 'WAIT = "3"; x=y']), { wait: 3, respondAsync: false });
    assert.deepEqual(parsePrefer('wait=99999'), { wait: MAX_WAIT_SECONDS, respondAsync: false });
    assert.deepEqual(parsePrefer('wait=-1, wait=abc'), { respondAsync: false });
  });
});

describe('http-kafka templates', () => {
  const route = (paths: string[]) => ({ when: paths.map((path) => ({ path })), exit: 'x' });

  it('substitutes path parameters and named values', () => {
    const lookup = paramsLookup({ id: 'a/b' }, { idempotencyKey: 'k' });
    assert.equal(expand('item-${params.id}-${ idempotencyKey }', lookup), 'item-a/b-k');
    assert.throws(() => expand('${params.other}', lookup), TemplateError);
    assert.throws(() => expand('${toString}', lookup), TemplateError);
  });

  it('knows which parameters every condition captures', () => {
    assert.deepEqual([...capturedParams(route(['/items/{id}', '/things/{id}/{sub}']))], ['id']);
    assert.deepEqual([...capturedParams(route([]))], []);
  });

  it('refuses templates a request could not fill', () => {
    const params = new Set(['id']);
    checkTemplate('${params.id}', 'key', params, []);
    assert.throws(() => checkTemplate('${params.nope}', 'key', params, []), /not a path parameter/);
    assert.throws(
      () => checkTemplate('${correlationId}', 'key', params, ['idempotencyKey']),
      /unknown expression/,
    );
  });

  it('builds cache_client filters with parameters substituted', () => {
    const templates = filterTemplates(
      [{ key: '${params.id}', headers: { tenant: 't-${params.tenant}' } }, { headers: { kind: 'all' } }],
      'with',
      new Set(['id', 'tenant']),
    );
    assert.deepEqual(buildFilters(templates, { id: '42', tenant: 'x' }), [
      [{ key: Buffer.from('42') }, { header: { name: 'tenant', value: Buffer.from('t-x') } }],
      [{ header: { name: 'kind', value: Buffer.from('all') } }],
    ]);
    assert.equal(buildFilters([], {}), undefined);
    assert.throws(
      () => filterTemplates([{ key: '${params.id}' }], 'with', new Set()),
      /not a path parameter/,
    );
  });
});

/** The status a proxy answers a failed cache call with. */
const kafkaErrorStatus = (error: unknown): number => statusOf(kafkaErrorCode(error));

describe('http-kafka error statuses', () => {
  it('maps broker and client errors to what a caller can act on', () => {
    assert.equal(kafkaErrorStatus(new MessageTooLargeError('t', 10, 5)), 413);
    assert.equal(kafkaErrorStatus(new KafkaProtocolError(29, 'produce')), 403);
    assert.equal(
      kafkaErrorStatus(new Error('wrapped', { cause: new KafkaProtocolError(3, 'metadata') })),
      404,
    );
    assert.equal(kafkaErrorStatus(new KafkaProtocolError(7, 'produce')), 503);
    assert.equal(kafkaErrorStatus(new Error('something else')), 502);
    // A wait for Kafka that ran out: no broker reachable, or one that answered without it.
    assert.equal(
      kafkaErrorStatus(new KafkaWaitError('producer_id', undefined, 3_000, 'Kafka not reachable')),
      503,
    );
    assert.equal(kafkaErrorStatus(new KafkaWaitError('metadata', 'items', 3_000, undefined)), 503);
  });
});

describe('kafka-timeout of a route', () => {
  it('is 30 s unless the route says, in seconds', () => {
    assert.equal(DEFAULT_KAFKA_TIMEOUT_SECONDS, 30);
    assert.equal(kafkaTimeoutMs(undefined, 'w'), 30_000);
    assert.equal(kafkaTimeoutMs(2.5, 'w'), 2_500);
    assert.throws(() => kafkaTimeoutMs(0, 'routes[0].with.kafka-timeout'), {
      message: 'routes[0].with.kafka-timeout must be a positive number of seconds',
    });
  });
});
