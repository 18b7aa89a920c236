import { strict as assert } from 'node:assert';
import { PassThrough, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { eventLine, eventTime, ZillaEvents } from '../../src/telemetry/events.ts';
import { MAX_QUEUED_EVENT_BYTES, StdoutExporter } from '../../src/telemetry/stdout-exporter.ts';
import { failedAddress } from '../../src/bindings/kafka/client/reach.ts';

describe('Zilla events on standard output', () => {
  it("writes a line in the stdout exporter's format", () => {
    const date = new Date(2026, 11, 6, 9, 5, 7);
    const time = eventTime(date);
    assert.match(time, /^06\/Dec\/2026:09:05:07 [+-]\d{4}$/);
    assert.equal(
      eventLine(
        'example:north_http_server',
        date,
        'BINDING_HTTP_REQUEST_ACCEPTED',
        '- GET http://localhost:7114/items',
      ),
      `example:north_http_server [${time}] [0000000000000000d] BINDING_HTTP_REQUEST_ACCEPTED - GET http://localhost:7114/items\n`,
    );
  });

  it('raises events only while a sink takes them, qualified with the namespace', () => {
    const events = new ZillaEvents();
    const lines: string[] = [];
    events.requestAccepted('north', 'GET', 'http', 'localhost', '/');
    assert.equal(events.enabled, false);
    events.exportTo({ write: (line) => lines.push(line), flush: () => undefined }, 'example');
    events.engineStarted();
    events.requestAccepted('north', 'POST', 'https', 'localhost:7143', '/items?x=1');
    events.brokerConnectionFailed('south', '127.0.0.1', 9092);
    events.tlsHandshakeFailed('north_tls');
    events.exportTo(undefined, 'example');
    events.engineStopped();
    assert.deepEqual(
      lines.map((line) => line.replace(/ \[[^\]]+\] \[0{16}d\] /, ' ')),
      [
        'engine:events ENGINE_STARTED Engine Started.\n',
        'example:north BINDING_HTTP_REQUEST_ACCEPTED - POST https://localhost:7143/items?x=1\n',
        'example:south BINDING_KAFKA_BROKER_CONNECTION_FAILED Broker connection failed for host (127.0.0.1), port (9092).\n',
        'example:north_tls BINDING_TLS_HANDSHAKE_FAILED The client and server could not negotiate the desired level of security.\n',
      ],
    );
  });

  it('writes the lines of one turn at once, and drops them while nobody reads', async () => {
    const out = new PassThrough();
    const chunks: string[] = [];
    out.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
    let dropped = 0;
    const exporter = new StdoutExporter(out, (lines) => (dropped += lines));
    exporter.write('a\n');
    exporter.write('b\n');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(chunks, ['a\nb\n']);

    const stuck = new Writable({ highWaterMark: 1, write: () => undefined });
    const blocked = new StdoutExporter(stuck, (lines) => (dropped += lines));
    blocked.write('x'.repeat(MAX_QUEUED_EVENT_BYTES + 1));
    blocked.flush();
    blocked.write('lost\n');
    blocked.write('lost too\n');
    blocked.flush();
    assert.equal(dropped, 2);
    assert.equal(stuck.writableLength, MAX_QUEUED_EVENT_BYTES + 1);
  });

  it('names the broker address a connection error carries, else the first bootstrap server', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9093'), {
      address: '127.0.0.1',
      port: 9093,
    });
    assert.deepEqual(failedAddress(new Error('wrapped', { cause: refused }), 'a:1'), {
      host: '127.0.0.1',
      port: 9093,
    });
    assert.deepEqual(failedAddress(new Error('timeout'), 'kafka-1:9092, kafka-2:9092'), {
      host: 'kafka-1',
      port: 9092,
    });
    assert.deepEqual(failedAddress(new Error('timeout'), '[::1]:9092'), { host: '::1', port: 9092 });
  });
});
