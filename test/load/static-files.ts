// What a client without credentials can download from a static-file binding whose location is
// the config file's own directory (`location: .`): dotfiles, the config file, and the LMDB cache
// of a topic no route exposes, fetched through a `{path}` parameter holding `%2f`. Then the same
// requests against a location that holds only the site, and what `validate` and `start` say about
// a location holding kgate's own files.
//
//   node test/load/static-files.ts
//
// Starts one embedded broker on loopback and `kgate start` from the sources; stops both by itself
// (at the latest after 3 minutes).

import { request } from 'node:http';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKafka, type KafkaCluster } from '../../src/embedded/kafka/index.ts';
import { reservePort } from '../support/ports.ts';
import { KgateProcess, waitFor, withDeadline } from './lib/kgate-process.ts';

const TOPIC = 'payroll';
const SECRET_VALUE = 'PAYROLL-RECORD-4711';
const ENV_LINE = 'DB_PASSWORD=hunter2';

interface Answer {
  readonly status: number;
  readonly bytes: number;
  readonly leaked: string;
}

/** A raw GET: the path goes out as written, with its escapes (fetch would normalize it). */
function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        const text = body.toString('latin1');
        const leaked = [
          text.includes(SECRET_VALUE) ? 'topic record' : '',
          text.includes(ENV_LINE) ? 'password' : '',
          text.includes('bindings:') ? 'config' : '',
        ]
          .filter((s) => s !== '')
          .join(', ');
        resolve({ status: res.statusCode ?? 0, bytes: body.length, leaked: leaked === '' ? '-' : leaked });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function config(port: number, location: string, bootstrap: string): string {
  return [
    'name: static-files-load',
    'bindings:',
    `  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: ${port} }, exit: http }`,
    '  http: { type: http, kind: server, exit: files }',
    '  files:',
    '    type: http-filesystem',
    '    kind: proxy',
    '    routes:',
    '      - { when: [ { path: "/{path}" } ], exit: site, with: { path: "${params.path}" } }',
    '      - { when: [ { path: "/docs/*" } ], exit: site }',
    `  site: { type: filesystem, kind: server, options: { location: ${JSON.stringify(location)} } }`,
    `  cache: { type: kafka, kind: cache_server, options: { bootstrap: [${TOPIC}] }, exit: south }`,
    `  south: { type: kafka, kind: client, options: { servers: ["${bootstrap}"] } }`,
    '',
  ].join('\n');
}

const PROBES: readonly { what: string; path: string }[] = [
  { what: 'a page', path: '/index.html' },
  { what: 'a dotfile', path: '/.env' },
  { what: 'a file in a dot-directory', path: '/.git%2fconfig' },
  { what: 'the config file', path: '/kgate.yaml' },
  { what: 'the LMDB cache through %2f', path: '/.kgate%2fcache%2fcache%2fdata.mdb' },
  { what: 'the LMDB cache through %2F, no dotfile', path: '/cache-dir%2Fcache%2Fdata.mdb' },
  { what: '.. through %2e%2e%2f', path: '/%2e%2e%2fkgate.yaml' },
  { what: 'a nested page through %2f', path: '/docs%2fpage.html' },
  { what: 'a nested page', path: '/docs/page.html' },
  { what: 'a link to a dotfile', path: '/link-to-env' },
];

/** Writes the site: a page, a nested page, a dotfile, a dot-directory and a link to the dotfile. */
async function writeSite(dir: string): Promise<void> {
  await mkdir(join(dir, 'docs'), { recursive: true });
  await mkdir(join(dir, '.git'), { recursive: true });
  await writeFile(join(dir, 'index.html'), '<p>hello</p>');
  await writeFile(join(dir, 'docs', 'page.html'), '<p>docs</p>');
  await writeFile(join(dir, '.env'), `${ENV_LINE}\n`);
  await writeFile(join(dir, '.git', 'config'), '[core]\n');
  await symlink('.env', join(dir, 'link-to-env'));
}

async function probe(port: number, label: string): Promise<void> {
  console.log(`\n${label}\n`);
  console.log('| request | path | status | bytes | what leaked |');
  console.log('| :-- | :-- | --: | --: | :-- |');
  for (const { what, path } of PROBES) {
    const answer = await get(port, path);
    console.log(`| ${what} | \`${path}\` | ${answer.status} | ${answer.bytes} | ${answer.leaked} |`);
  }
}

/** Starts kgate on `file`; undefined (with what it said) when it refuses to start. */
async function start(
  file: string,
  port: number,
  args: readonly string[],
  started: KgateProcess[],
): Promise<KgateProcess | string> {
  const kgate = new KgateProcess(['start', '-c', file, ...args]);
  started.push(kgate);
  try {
    await waitFor(
      'kgate serves',
      async () => (await get(port, '/index.html')).status !== 0,
      () => kgate.running,
    );
    return kgate;
  } catch (error) {
    const exit = await kgate.exited;
    return `exit ${exit.code}: ${exit.output.trim().split('\n').at(-1) ?? String(error)}`;
  }
}

async function main(): Promise<void> {
  console.log(`command: node test/load/static-files.ts`);
  console.log(`node ${process.version}, ${new Date().toISOString()}`);
  let kafka: KafkaCluster | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'kgate-static-load-'));
  const started: KgateProcess[] = [];
  await withDeadline(
    180_000,
    async () => {
      kafka = await startKafka();
      await kafka.createTopic(TOPIC, { partitions: 1 });
      await kafka.produce(TOPIC, [{ key: 'alice', value: SECRET_VALUE }]);

      // 1. The location is the config file's directory; the cache is in its default place there.
      const exposed = join(dir, 'exposed');
      await writeSite(exposed);
      const exposedPort = await reservePort();
      const exposedFile = join(exposed, 'kgate.yaml');
      await writeFile(exposedFile, config(exposedPort, '.', kafka.bootstrap));
      const validate = new KgateProcess(['validate', '-c', exposedFile]);
      const validated = await validate.exited;
      console.log(`\nkgate validate, location: . -> exit ${validated.code}: ${validated.output.trim()}`);
      const first = await start(exposedFile, exposedPort, [], started);
      if (typeof first === 'string') console.log(`kgate start, location: . -> ${first}`);
      else {
        // The cache has the topic once its store holds the record.
        await waitFor(
          'the cache holds the topic',
          async () => (await get(exposedPort, '/.kgate%2fcache%2fcache%2fdata.mdb')).leaked.includes('topic'),
          () => first.running,
          15_000,
        ).catch(() => undefined);
        await probe(exposedPort, 'location: . (the config file and the default cache beside it)');
        await first.stop();
      }

      // 2. The location holds only the site, but --cache-dir points into it.
      const site = join(dir, 'site');
      await writeSite(site);
      const sitePort = await reservePort();
      const siteFile = join(dir, 'kgate.yaml');
      await writeFile(siteFile, config(sitePort, 'site', kafka.bootstrap));
      const cacheInside = await start(siteFile, sitePort, ['--cache-dir', join(site, 'cache-dir')], started);
      if (typeof cacheInside === 'string')
        console.log(`\nkgate start --cache-dir site/cache-dir -> ${cacheInside}`);
      else {
        await probe(sitePort, 'location: site, --cache-dir site/cache-dir');
        await cacheInside.stop();
      }

      // 3. The location holds only the site and the cache is elsewhere.
      await rm(join(site, 'cache-dir'), { recursive: true, force: true });
      const clean = await start(siteFile, sitePort, ['--cache-dir', join(dir, 'cache')], started);
      if (typeof clean === 'string') console.log(`\nkgate start, location: site -> ${clean}`);
      else {
        await probe(sitePort, 'location: site, cache elsewhere');
        await clean.stop();
      }
    },
    async () => {
      for (const kgate of started) await kgate.stop();
      await kafka?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  );
}

await main();
