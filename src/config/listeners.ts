import type { PortSpec } from './routes.ts';
import { pointerOf, type Segment } from './source.ts';
import { toTelemetry } from './telemetry.ts';

/**
 * Where a tcp server listens without a `host`: every interface, as in Zilla. The tcp server's
 * options read it from here, so that this check and the listener agree.
 */
export const TCP_DEFAULT_HOST = '0.0.0.0';

export interface ListenerProblem {
  pointer: string;
  message: string;
}

/** One listening socket a config asks for, or a range of them. */
interface Claim {
  /** `binding tcp` or `telemetry exporter prometheus`, as messages name it. */
  owner: string;
  host: string;
  from: number;
  to: number;
  segments: Segment[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The ranges a port option names; port 0 (a port the system picks) claims none, and neither does
 * anything the schema refuses, which is reported on its own.
 */
function ranges(spec: unknown): [number, number][] {
  const out: [number, number][] = [];
  for (const item of Array.isArray(spec) ? (spec as unknown[]) : [spec]) {
    if (typeof item === 'number') out.push([item, item]);
    else if (typeof item === 'string' && /^\d+(-\d+)?$/.test(item)) {
      const [from, to] = item.split('-').map(Number);
      if (from !== undefined) out.push([from, to ?? from]);
    }
  }
  return out.filter(([from, to]) => Number.isInteger(from) && from > 0 && to >= from);
}

const WILDCARDS = new Set(['', '0.0.0.0', '::', '[::]', '*']);

/** The addresses a host listens on, or undefined for every address. */
function addressesOf(host: string): Set<string> | undefined {
  const name = host.trim().toLowerCase();
  if (WILDCARDS.has(name)) return undefined;
  if (name === 'localhost') return new Set(['127.0.0.1', '::1']);
  return new Set([name.replace(/^\[(.*)\]$/, '$1')]);
}

/** Whether two listeners' hosts share an address: either listens on every one, or they name one. */
function sameAddress(a: string, b: string): boolean {
  const first = addressesOf(a);
  const second = addressesOf(b);
  if (first === undefined || second === undefined) return true;
  return [...first].some((address) => second.has(address));
}

/** What the tcp servers and the telemetry exporters of a schema-valid config listen on, in file order. */
function claims(data: Record<string, unknown>): Claim[] {
  const out: Claim[] = [];
  const bindings = isObject(data['bindings']) ? data['bindings'] : {};
  for (const [name, binding] of Object.entries(bindings)) {
    // Only a tcp server opens a listening socket; tls and http servers take its connections.
    if (!isObject(binding) || binding['type'] !== 'tcp' || binding['kind'] !== 'server') continue;
    const options = isObject(binding['options'])
      ? (binding['options'] as { host?: unknown; port?: PortSpec })
      : {};
    const host = typeof options.host === 'string' ? options.host : TCP_DEFAULT_HOST;
    for (const [from, to] of ranges(options.port)) {
      out.push({
        owner: `binding ${name}`,
        host,
        from,
        to,
        segments: ['bindings', name, 'options', 'port'],
      });
    }
  }
  for (const exporter of telemetryExporters(data['telemetry'])) {
    exporter.endpoints.forEach((endpoint, index) => {
      for (const [from, to] of ranges(endpoint.port)) {
        out.push({
          owner: `telemetry exporter ${exporter.name}`,
          host: endpoint.host,
          from,
          to,
          segments: ['telemetry', 'exporters', exporter.name, 'options', 'endpoints', index, 'port'],
        });
      }
    });
  }
  return out;
}

/** The telemetry section's prometheus exporters, if it passed the schema (else none: that is reported). */
function telemetryExporters(raw: unknown): ReturnType<typeof toTelemetry>['exporters'] {
  try {
    return raw === undefined ? [] : toTelemetry(raw).exporters;
  } catch {
    return [];
  }
}

/**
 * Two listeners on one port: both would fail to start (EADDRINUSE), or, with `--workers`, where
 * listeners share ports with SO_REUSEPORT, both would start and the kernel would split the
 * connections between them. Each later claim is reported at its port, naming the earlier one.
 */
export function checkListeners(data: Record<string, unknown>): ListenerProblem[] {
  const problems: ListenerProblem[] = [];
  const seen: Claim[] = [];
  for (const claim of claims(data)) {
    const clash = seen.find(
      (other) =>
        other.owner !== claim.owner &&
        other.from <= claim.to &&
        claim.from <= other.to &&
        sameAddress(other.host, claim.host),
    );
    if (clash !== undefined) {
      const port = Math.max(clash.from, claim.from);
      const where = clash.host === '' ? 'every address' : clash.host;
      problems.push({
        pointer: pointerOf(claim.segments),
        message: `port ${port} is also listened on by ${clash.owner} (${where}); a port takes one listener`,
      });
    }
    seen.push(claim);
  }
  return problems;
}
