// What `kgate validate`, `kgate start` and a reload print or accept for configs that used to leak
// a secret or pass while broken (docs/security.md, 7, 10 and 14):
//   node bench/config-refusals.ts [--kgate src/cli/main.ts]
// No broker: every config either fails before it needs one or serves static files. Each row gives
// the exit code (or what a running kgate answered) and how often the substituted secret
// `hunter2-s3cret` appeared in everything the command printed. `--kgate` names the CLI entry to
// run, e.g. the src/cli/main.ts of a checkout of an older commit. Every child is killed after 60 s.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { reservePorts } from '../src/embedded/kafka/ports.ts';
import { printEnvironment, printTable } from './lib/common.ts';

const { values: args } = parseArgs({ options: { kgate: { type: 'string', default: 'src/cli/main.ts' } } });
const KGATE = resolve(args.kgate);
const SECRET = 'hunter2-s3cret';
const ENV = {
  PATH: process.env['PATH'] ?? '',
  HOME: process.env['HOME'] ?? '',
  SASL_PASSWORD: SECRET,
  // Host names are no secret, but they are substituted values too: they must show as references.
  BROKER: `${SECRET}.invalid:9092`,
  LISTEN_HOST: '192.0.2.77',
  KGATE_LOG_LEVEL: 'info',
};

interface Running {
  output: () => string;
  ended: Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
}

function run(argv: readonly string[]): Running {
  const child = spawn(process.execPath, [KGATE, ...argv], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const deadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const ended = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(deadline);
      resolve(code);
    }),
  );
  return { output: () => output, ended, kill: (signal) => child.kill(signal) };
}

const count = (text: string): number => text.split(SECRET).length - 1;
const firstLine = (text: string): string =>
  (text.split('\n').find((l) => l.trim() !== '') ?? '').slice(0, 110);

async function until(check: () => boolean, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function corsHeaders(port: number, origin: string): Promise<string> {
  return new Promise((resolve) => {
    request({ host: '127.0.0.1', port, path: '/index.html', headers: { origin } }, (res) => {
      res.resume();
      const allow = res.headers['access-control-allow-origin'];
      const credentials = res.headers['access-control-allow-credentials'];
      resolve(`${res.statusCode}, allow-origin ${allow ?? '-'}, allow-credentials ${credentials ?? '-'}`);
    })
      .on('error', (error) => resolve(error.message))
      .end();
  });
}

printEnvironment(`node bench/config-refusals.ts --kgate ${args.kgate}`);
const dir = await mkdtemp(join(tmpdir(), 'kgate-bench-refusals-'));
const rows: string[][] = [];
try {
  await mkdir(join(dir, 'site'));
  await writeFile(join(dir, 'site', 'index.html'), 'served');
  const [port = 0] = (await reservePorts(1)).ports;
  const file = (name: string, ...lines: string[]): Promise<string> => {
    const path = join(dir, name);
    return writeFile(path, lines.join('\n') + '\n').then(() => path);
  };
  const site = [
    'name: site',
    'bindings:',
    `  tcp: { type: tcp, kind: server, options: { host: 127.0.0.1, port: ${port} }, exit: http }`,
    '  http: { type: http, kind: server, exit: files }',
    '  files:',
    '    type: http-filesystem',
    '    kind: proxy',
    "    routes: [{ when: [{ path: '/{path}' }], exit: fs, with: { path: '${params.path}' } }]",
    '  fs: { type: filesystem, kind: server, options: { location: site } }',
  ];
  const leakyKind = [
    '  leaky:',
    '    type: kafka',
    '    kind:',
    '      sasl: { password: "${{env.SASL_PASSWORD}}" }',
  ];

  // 7: a mapping under `kind:` holding a substituted password.
  const kind = await file('kind.yaml', ...site, ...leakyKind);
  for (const command of ['validate', 'start']) {
    const extra = command === 'start' ? ['--cache-dir', join(dir, 'cache')] : [];
    const done = run([command, '-c', kind, ...extra]);
    const code = await done.ended;
    rows.push([
      `7: ${command}, password under kind:`,
      `exit ${code}`,
      String(count(done.output())),
      firstLine(done.output()),
    ]);
  }
  // 7: a broker address from the environment, in the start error and every retry's log line.
  const broker = await file(
    'broker.yaml',
    'name: b',
    'bindings:',
    '  k: { type: kafka, kind: client, options: { servers: ["${{env.BROKER}}"] } }',
  );
  const unreachable = run(['start', '-c', broker, '--cache-dir', join(dir, 'cache'), '--start-timeout', '2']);
  const unreachableCode = await unreachable.ended;
  rows.push([
    '7: start, broker address from env unreachable',
    `exit ${unreachableCode}`,
    String(count(unreachable.output())),
    firstLine(
      unreachable
        .output()
        .split('\n')
        .filter((l) => l.startsWith('kgate:'))
        .join('\n'),
    ),
  ]);
  // 7: reloads of a running kgate: a refused edit, then one whose listener cannot bind.
  const running = await file('kgate.yaml', ...site);
  const gateway = run(['start', '-c', running, '--cache-dir', join(dir, 'cache')]);
  await until(() => gateway.output().includes('kgate started'));
  await writeFile(running, [...site, ...leakyKind].join('\n') + '\n');
  await until(() => gateway.output().includes('config reload rejected'));
  const hostFromEnv = site.map((l) => l.replace('host: 127.0.0.1', 'host: "${{env.LISTEN_HOST}}"'));
  await writeFile(running, hostFromEnv.join('\n') + '\n');
  await until(() => /config reload failed[^\n]*(restored|still down)/.test(gateway.output()));
  gateway.kill('SIGTERM');
  await gateway.ended;
  rows.push([
    '7: reload log, refused edit then failed listener',
    `${gateway.output().includes(ENV.LISTEN_HOST) ? 'address printed' : 'address as reference'}`,
    String(count(gateway.output())),
    firstLine(
      gateway
        .output()
        .split('\n')
        .filter((l) => l.includes('config reload failed'))
        .join('\n'),
    ),
  ]);

  // 10: CORS credentials without a list of origins.
  const cors = await file(
    'cors.yaml',
    ...site.map((l) =>
      l.replace(
        '  http: { type: http, kind: server, exit: files }',
        '  http: { type: http, kind: server, options: { access-control: { policy: cross-origin, allow: { credentials: true } } }, exit: files }',
      ),
    ),
  );
  const corsValidate = run(['validate', '-c', cors]);
  const corsCode = await corsValidate.ended;
  rows.push([
    '10: validate, credentials without origins',
    `exit ${corsCode}`,
    '',
    firstLine(corsValidate.output()),
  ]);
  if (corsCode === 0) {
    const served = run(['start', '-c', cors, '--cache-dir', join(dir, 'cache')]);
    await until(() => served.output().includes('kgate started'));
    for (const origin of ['https://evil.example', 'null'])
      rows.push([`10: GET with Origin: ${origin}`, await corsHeaders(port, origin), '', '']);
    served.kill('SIGTERM');
    await served.ended;
  }

  // 14: two listeners on one port.
  const twoTcp = await file(
    'two.yaml',
    ...site,
    `  tcp2: { type: tcp, kind: server, options: { port: ${port} }, exit: http }`,
  );
  const telemetry = await file(
    'telemetry.yaml',
    ...site,
    'telemetry:',
    `  exporters: { p: { type: prometheus, options: { endpoints: [{ scheme: http, port: ${port} }] } } }`,
  );
  for (const [what, path] of [
    ['two tcp servers', twoTcp],
    ['telemetry on a binding port', telemetry],
  ] as const) {
    const validate = run(['validate', '-c', path]);
    const code = await validate.ended;
    rows.push([`14: validate, ${what}`, `exit ${code}`, '', firstLine(validate.output())]);
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

printTable(['case', 'outcome', 'secret printed', 'first line'], rows);
