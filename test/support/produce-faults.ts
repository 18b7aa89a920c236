// What the produce fault scenarios share: a load of produce calls whose every answer is kept, a
// reader of what the topic really holds (kcat, a client kgate did not write), and the counts the
// scenarios report: lost, duplicated, reordered, and what each answer said.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { defaultRegistry } from '../../src/bindings/index.ts';
import { type KafkaClient, ProduceOutcomeUnknownError } from '../../src/bindings/kafka/client/index.ts';
import type { TcpServerBinding } from '../../src/bindings/tcp/server.ts';
import { parseConfig } from '../../src/config/index.ts';
import { Engine } from '../../src/engine/engine.ts';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/** A logger at debug level whose lines the test reads back. */
export function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n'))
        if (text !== '') lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** One produce call and what it was answered. */
export interface Sent {
  readonly value: string;
  /** The partition it went to, when the caller chose it or the answer said. */
  partition: number | undefined;
  readonly sentAt: number;
  answeredAt?: number;
  /** 'written' (2xx, acknowledged), 'failed' (certainly not written), 'unknown' (may be written). */
  outcome?: 'written' | 'failed' | 'unknown';
  status?: number;
  offset?: bigint;
  error?: string;
}

/** The records of one partition as kcat reads them: offset and value. */
export type PartitionLog = readonly { readonly offset: bigint; readonly value: string }[];

/** Every record of `topic`'s partitions 0..count-1, read with kcat from the start to the end. */
export async function readTopic(bootstrap: string, topic: string, count: number): Promise<PartitionLog[]> {
  const logs: PartitionLog[] = [];
  for (let p = 0; p < count; p++) {
    const out = await kcat([
      '-b',
      bootstrap,
      '-C',
      '-t',
      topic,
      '-p',
      String(p),
      '-o',
      'beginning',
      '-e',
      '-q',
      '-f',
      '%o %s\\n',
    ]);
    logs.push(
      out
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => {
          const space = line.indexOf(' ');
          return { offset: BigInt(line.slice(0, space)), value: line.slice(space + 1) };
        }),
    );
  }
  return logs;
}

function kcat(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`kcat exited ${code}: ${err}`)),
    );
  });
}

export interface Counts {
  readonly calls: number;
  readonly written: number;
  readonly failed: number;
  readonly unknown: number;
  /** Acknowledged, absent from the topic. */
  readonly lost: number;
  /** Seen more than once. */
  readonly duplicated: number;
  /**
   * Pairs of one partition seen in another order than the one they must keep: their call order
   * when `callOrder`, else their acknowledgements (one acknowledged before the other was sent).
   */
  readonly reordered: number;
  /** Answered "failed" (certainly not written) and yet in the topic. */
  readonly failedButWritten: number;
  /** Answered "unknown" and found in the topic. */
  readonly unknownWritten: number;
  /** Acknowledged at an offset other than the one the topic holds it at. */
  readonly wrongOffset: number;
}

/** What the topic holds against what each call was answered. */
export function count(sent: readonly Sent[], logs: readonly PartitionLog[], callOrder: boolean): Counts {
  const seen = new Map<string, { partition: number; offset: bigint; times: number }>();
  logs.forEach((log, partition) => {
    for (const { offset, value } of log) {
      const entry = seen.get(value);
      if (entry === undefined) seen.set(value, { partition, offset, times: 1 });
      else entry.times++;
    }
  });
  let lost = 0;
  let duplicated = 0;
  let failedButWritten = 0;
  let unknownWritten = 0;
  let wrongOffset = 0;
  for (const s of sent) {
    const found = seen.get(s.value);
    if (found !== undefined && found.times > 1) duplicated++;
    if (s.outcome === 'written') {
      if (found === undefined) lost++;
      else if (s.offset !== undefined && s.offset >= 0n && s.offset !== found.offset) wrongOffset++;
    }
    if (s.outcome === 'failed' && found !== undefined) failedButWritten++;
    if (s.outcome === 'unknown' && found !== undefined) unknownWritten++;
  }
  // Reordering, per partition, among the calls acknowledged.
  let reordered = 0;
  const byPartition = new Map<number, { s: Sent; offset: bigint }[]>();
  for (const s of sent) {
    const found = seen.get(s.value);
    if (s.outcome !== 'written' || found === undefined) continue;
    const list = byPartition.get(found.partition) ?? [];
    list.push({ s, offset: found.offset });
    byPartition.set(found.partition, list);
  }
  for (const list of byPartition.values()) {
    if (callOrder) {
      // Calls were made in list order (sent order); their offsets must rise.
      for (let i = 1; i < list.length; i++)
        if ((list[i]?.offset ?? 0n) < (list[i - 1]?.offset ?? 0n)) reordered++;
    } else {
      // One acknowledged before another was sent must come first.
      const byAck = [...list].sort((a, b) => (a.s.answeredAt ?? 0) - (b.s.answeredAt ?? 0));
      const bySent = [...list].sort((a, b) => a.s.sentAt - b.s.sentAt);
      let latestAcked: { s: Sent; offset: bigint } | undefined;
      let j = 0;
      for (const b of bySent) {
        while (j < byAck.length && (byAck[j]?.s.answeredAt ?? Infinity) < b.s.sentAt) {
          const a = byAck[j];
          if (a !== undefined && (latestAcked === undefined || a.offset > latestAcked.offset))
            latestAcked = a;
          j++;
        }
        if (latestAcked !== undefined && b.offset < latestAcked.offset) reordered++;
      }
    }
  }
  return {
    calls: sent.length,
    written: sent.filter((s) => s.outcome === 'written').length,
    failed: sent.filter((s) => s.outcome === 'failed').length,
    unknown: sent.filter((s) => s.outcome === 'unknown').length,
    lost,
    duplicated,
    reordered,
    failedButWritten,
    unknownWritten,
    wrongOffset,
  };
}

/** Milliseconds between `from` and the first answer after it that says written. */
export function firstWrittenAfter(sent: readonly Sent[], from: number): number | undefined {
  let first: number | undefined;
  for (const s of sent)
    if (s.outcome === 'written' && s.answeredAt !== undefined && s.answeredAt >= from)
      first = first === undefined ? s.answeredAt : Math.min(first, s.answeredAt);
  return first === undefined ? undefined : first - from;
}

/** The slowest answer, in ms. */
export function slowest(sent: readonly Sent[]): number {
  let most = 0;
  for (const s of sent) if (s.answeredAt !== undefined) most = Math.max(most, s.answeredAt - s.sentAt);
  return most;
}

/**
 * Calls `send` for `count` values at `perSecond`, without waiting for answers (so calls pile up
 * in flight during an outage), and resolves once every call was answered.
 */
export async function paced(
  count: number,
  perSecond: number,
  send: (index: number) => Promise<void>,
  stop?: AbortSignal,
): Promise<void> {
  const started = performance.now();
  const calls: Promise<void>[] = [];
  for (let i = 0; i < count && stop?.aborted !== true; i++) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    calls.push(send(i));
  }
  await Promise.all(calls);
}

/**
 * One-record produce calls through `client` at `perSecond`, partition by partition in turn, each
 * recorded in `sent` with its outcome, until `count` calls or `stop`.
 */
export function clientProduceLoad(
  client: KafkaClient,
  topic: string,
  partitions: number,
  perSecond: number,
  stop: AbortSignal,
  count = 60_000,
): { readonly sent: Sent[]; readonly load: Promise<void> } {
  const sent: Sent[] = [];
  const load = paced(
    count,
    perSecond,
    async (i) => {
      const s: Sent = { value: `${topic}-${i}`, partition: i % partitions, sentAt: Date.now() };
      sent.push(s);
      try {
        s.offset = (await client.produce(topic, i % partitions, [{ value: s.value }])).baseOffset;
        s.outcome = 'written';
      } catch (error) {
        s.outcome = error instanceof ProduceOutcomeUnknownError ? 'unknown' : 'failed';
        s.error = error instanceof Error ? error.message : String(error);
      } finally {
        s.answeredAt = Date.now();
      }
    },
    stop,
  );
  return { sent, load };
}

/** kgate's http-kafka chain in front of `bootstrap`: PUT /items/{id} (keyed by id) and POST /events (no key) into `topic`. */
export interface ProduceGateway {
  readonly port: number;
  readonly lines: LogLine[];
  /** Sends value `i` (PUT for even, POST for odd) and records its answer in `sent`. */
  send(i: number): Promise<void>;
  readonly sent: Sent[];
  stop(): Promise<void>;
}

export async function startProduceGateway(
  bootstrap: string,
  topic: string,
  clientOptions = '',
): Promise<ProduceGateway> {
  const { log, lines } = capturingLogger();
  const stateDir = await mkdtemp(join(tmpdir(), 'kgate-produce-faults-'));
  const servers = bootstrap
    .split(',')
    .map((s) => `"${s}"`)
    .join(', ');
  const yaml = `
name: produce-faults
bindings:
  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: 0 }, exit: http }
  http: { type: http, kind: server, exit: rest }
  rest:
    type: http-kafka
    kind: proxy
    routes:
      - when: [{ method: PUT, path: "/items/{id}" }]
        exit: north
        with: { capability: produce, topic: ${topic}, key: "\${params.id}" }
      - when: [{ method: POST, path: /events }]
        exit: north
        with: { capability: produce, topic: ${topic} }
  north: { type: kafka, kind: cache_client, exit: cache }
  cache: { type: kafka, kind: cache_server, exit: south }
  south: { type: kafka, kind: client, options: { servers: [${servers}]${clientOptions === '' ? '' : `, ${clientOptions}`} } }
`;
  const engine = new Engine(parseConfig(yaml, 'produce-faults.yaml'), defaultRegistry(), {
    logger: log,
    stateDir,
  });
  await engine.start();
  const port = (engine.binding('tcp') as TcpServerBinding).ports[0];
  if (port === undefined) throw new Error('the gateway listens on no port');
  // Enough sockets that every request of an outage is in kgate, not queued in this client; one
  // connection per request, so no request races the server closing an idle kept-alive socket.
  const agent = new Agent({ keepAlive: false, maxSockets: 4096 });
  const sent: Sent[] = [];
  const send = (i: number): Promise<void> =>
    new Promise((resolve) => {
      const put = i % 2 === 0;
      const s: Sent = {
        value: `${topic}-${put ? 'put' : 'post'}-${i}`,
        partition: undefined,
        sentAt: Date.now(),
      };
      sent.push(s);
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          agent,
          method: put ? 'PUT' : 'POST',
          path: put ? `/items/item-${i}` : '/events',
          headers: { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(s.value) },
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => {
            s.answeredAt = Date.now();
            s.status = res.statusCode;
            if (res.statusCode === 204) s.outcome = 'written';
            else {
              s.outcome = res.headers['kgate-outcome'] === 'unknown' ? 'unknown' : 'failed';
              s.error = `${res.statusCode}: ${body}`;
            }
            resolve();
          });
        },
      );
      req.on('error', (error) => {
        s.answeredAt = Date.now();
        s.outcome = 'failed';
        s.error = error.message;
        resolve();
      });
      req.end(s.value);
    });
  return {
    port,
    lines,
    send,
    sent,
    async stop() {
      agent.destroy();
      await engine.stop(5_000);
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** The connection lines logged for broker `address`, in order. */
export function connectionLines(lines: readonly LogLine[], address: string): LogLine[] {
  return lines.filter(
    (l) =>
      l.broker === address && (l.msg === 'broker connection lost' || l.msg === 'broker connection restored'),
  );
}
