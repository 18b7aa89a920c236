import { isIP } from 'node:net';
import { loadConfigFile } from '../../config/index.ts';
import type { GatewayStatus } from '../../telemetry/status.ts';
import { CliError, findConfigFile } from '../config-file.ts';

export interface StatusOptions {
  readonly config?: string;
  readonly url?: string;
}

/** Longer than a readiness probe (2 s), which a status request may wait for. */
const FETCH_TIMEOUT_MS = 5_000;

/** Addresses that listen on loopback too, where a local client gets the details of each problem. */
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1' || host === '[::1]';
}

/** A host as the authority of a URL: IPv6 literals in brackets. */
function authority(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * The `/status` URL of the telemetry server the config file starts: the first prometheus
 * endpoint reachable over loopback (asked at 127.0.0.1 when it listens on every address), else
 * the first endpoint at its own address, which answers without the details of problems.
 */
export async function statusUrl(options: StatusOptions): Promise<URL> {
  if (options.url !== undefined) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new CliError(`--url ${options.url} is not a URL`);
    }
    return new URL('/status', base);
  }
  const file = await findConfigFile(options.config);
  const config = await loadConfigFile(file);
  const endpoints = config.telemetry?.exporters.flatMap((e) => e.endpoints) ?? [];
  const endpoint = endpoints.find((e) => isLoopback(e.host) || WILDCARDS.has(e.host)) ?? endpoints[0];
  if (endpoint === undefined)
    throw new CliError(`${file} has no prometheus telemetry endpoint to ask; add one or pass --url`);
  const host = WILDCARDS.has(endpoint.host) ? '127.0.0.1' : authority(endpoint.host);
  return new URL(`http://${host}:${endpoint.port}/status`);
}

export async function statusCommand(options: StatusOptions): Promise<void> {
  const url = await statusUrl(options);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch {
    throw new CliError(
      `no running kgate answers at ${url.href} (is telemetry configured and kgate started?)`,
    );
  }
  if (!response.ok) throw new CliError(`${url.href} answered ${response.status}: not a kgate status`);
  const status = (await response.json()) as GatewayStatus;
  process.stdout.write(formatStatus(status));
}

function table(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right: ReadonlySet<number>,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `  ${cells
      .map((c, i) => {
        const width = widths[i] ?? 0;
        return right.has(i) ? c.padStart(width) : c.padEnd(width);
      })
      .join('  ')
      .trimEnd()}\n`;
  return line(header) + rows.map(line).join('');
}

/** Bindings with their health, then each cache_server's partitions with their lag behind Kafka. */
export function formatStatus(status: GatewayStatus): string {
  let out = status.stopping ? 'kgate is stopping\n\n' : '';
  out += 'bindings\n';
  out += table(
    ['NAME', 'TYPE', 'KIND', 'HEALTH'],
    status.bindings.map((b) => [b.name, b.type, b.kind, b.problem === undefined ? 'ok' : b.problem]),
    new Set(),
  );
  for (const cache of status.caches) {
    out += `\ncache ${cache.binding}\n`;
    if (cache.ingestProblem !== undefined) out += `  ${cache.ingestProblem}\n`;
    if (cache.partitions.length === 0) {
      out += '  (nothing cached yet)\n';
      continue;
    }
    out += table(
      [
        'TOPIC',
        'PARTITION',
        'FIRST',
        'LAST',
        'NEXT',
        'HIGH WATERMARK',
        'LAG',
        'MESSAGES',
        'BYTES',
        'BOOTSTRAP',
      ],
      cache.partitions.map((p) => [
        p.topic,
        String(p.partition),
        p.firstOffset === null ? '-' : String(p.firstOffset),
        p.lastOffset === null ? '-' : String(p.lastOffset),
        String(p.nextOffset),
        String(p.highWatermark),
        String(p.lag),
        String(p.messages),
        String(p.bytes),
        p.bootstrap ? 'yes' : 'no',
      ]),
      new Set([1, 2, 3, 4, 5, 6, 7, 8]),
    );
  }
  return out;
}
