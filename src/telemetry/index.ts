import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, type Registry } from 'prom-client';
import { Redactor, type PrometheusExporterConfig, type TelemetryConfig } from '../config/index.ts';
import { checkReadiness, ConnectionProbes, type Audience, type ReadinessSource } from './readiness.ts';
import { probeMetrics } from './probe-metrics.ts';
import { collectStatus } from './status.ts';
import { zillaEvents } from './events.ts';
import { perRegistry } from './per-registry.ts';
import { StdoutExporter } from './stdout-exporter.ts';
import { zillaMetrics } from './zilla-metrics.ts';

export { checkReadiness, ConnectionProbes, PROBE_REUSE_MS, PROBE_TIMEOUT_MS } from './readiness.ts';
export type { Audience, NotReady, Problem, ProbeObserver, Readiness, ReadinessSource } from './readiness.ts';
export { collectStatus, INGEST_PAUSED } from './status.ts';
export type { BindingStatus, CachePartitionStatus, CacheStatus, GatewayStatus } from './status.ts';
export { BindingSeries, Log2Histogram, Scalar, zillaMetrics } from './zilla-metrics.ts';
export { eventLine, zillaEvents, ZillaEvents } from './events.ts';

export interface TelemetryOptions {
  readonly config: TelemetryConfig | undefined;
  readonly metrics: Registry;
  readonly readiness: Omit<ReadinessSource, 'stopping'>;
  readonly logger: Logger;
  /** Bound on each readiness probe; see PROBE_TIMEOUT_MS. */
  readonly probeTimeoutMs?: number;
  /** How long a probe that found a problem is reused; see PROBE_REUSE_MS. */
  readonly probeReuseMs?: number;
  /** Keeps substituted values out of `/ready` and `/status`; by default, from the readiness config. */
  readonly redactor?: Redactor;
  /** Where `stdout` exporters write; by default, the process's standard output. */
  readonly stdout?: Writable;
}

export interface Telemetry {
  /** Ports being served, in start order. */
  readonly ports: readonly number[];
  stop(): Promise<void>;
}

/** One listening address and the metrics paths configured on it, with the exporter named in errors. */
interface Listener {
  readonly exporter: string;
  readonly host: string;
  readonly port: number;
  readonly paths: Set<string>;
}

export const PROCESS_METRICS_PREFIX = 'kgate_';

/** `Retry-After` of a `/ready` answered 503: the gap between two checks of a broker connection. */
const READY_RETRY_AFTER_SECONDS = 5;

function listenersOf(exporters: readonly PrometheusExporterConfig[]): Listener[] {
  const byAddress = new Map<string, Listener>();
  for (const exporter of exporters) {
    for (const endpoint of exporter.endpoints) {
      const address = `${endpoint.host} ${endpoint.port}`;
      const listener = byAddress.get(address) ?? {
        exporter: exporter.name,
        host: endpoint.host,
        port: endpoint.port,
        paths: new Set<string>(),
      };
      listener.paths.add(endpoint.path);
      byAddress.set(address, listener);
    }
  }
  return [...byAddress.values()];
}

/**
 * A client connected over loopback is local and gets the details of each problem; any other
 * address, this machine's own interface addresses included, is remote. A proxy on this machine
 * in front of the port makes every client look local.
 */
export function audienceOf(remoteAddress: string | undefined): Audience {
  if (remoteAddress === undefined) return 'remote';
  const address = remoteAddress.startsWith('::ffff:') ? remoteAddress.slice('::ffff:'.length) : remoteAddress;
  if (address.startsWith('127.') || address === '::1') return 'local';
  return 'remote';
}

/** Resource figures (RSS, heap, event loop lag) are what an operator looks at first; add them once per registry. */
function collectProcessMetrics(registry: Registry): void {
  if (registry.getSingleMetric(`${PROCESS_METRICS_PREFIX}process_resident_memory_bytes`) !== undefined)
    return;
  collectDefaultMetrics({ register: registry, prefix: PROCESS_METRICS_PREFIX });
}

const droppedEvents = perRegistry(
  (registers) =>
    new Counter({
      name: 'kgate_telemetry_events_dropped_total',
      help: 'Event lines a stdout exporter dropped because standard output was not being read (more than 1 MiB unwritten)',
      registers,
    }),
);

/**
 * Points the bindings' events at standard output while the config has a `stdout` exporter (several
 * print each line once), and nowhere otherwise. Events outlive a telemetry restart: the engine's
 * stop is reported after telemetry has stopped answering.
 */
function exportEvents(options: TelemetryOptions): void {
  const events = zillaEvents(options.metrics);
  const namespace = options.readiness.config.name;
  if ((options.config?.stdout ?? []).length === 0) {
    events.exportTo(undefined, namespace);
    return;
  }
  const dropped = droppedEvents(options.metrics);
  dropped.inc(0);
  events.exportTo(
    new StdoutExporter(options.stdout ?? process.stdout, (lines) => dropped.inc(lines)),
    namespace,
  );
}

function listen(server: Server, listener: Listener): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      // Deliberately no cause: the CLI prints causes, and this line already says all there is.
      const what =
        error.code === 'EADDRINUSE'
          ? `port ${listener.port} is already in use`
          : error.code === 'EADDRNOTAVAIL'
            ? `address ${listener.host} is not on this machine`
            : `cannot listen on ${listener.host} port ${listener.port}: ${error.message}`;
      reject(new Error(`telemetry ${listener.exporter}: ${what}`));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ host: listener.host, port: listener.port });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    // Scrapers keep connections alive; without this, close() would wait for them to go idle.
    server.closeAllConnections();
  });
}

function send(response: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  response.end(head ? undefined : body);
}

/**
 * Serves each prometheus exporter's endpoints, plus `/health`, `/ready` and `/status` on the same
 * ports.
 * Resolves once every port listens; if one cannot, the others are closed again and it rejects.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<Telemetry> {
  exportEvents(options);
  const listeners = listenersOf(options.config?.exporters ?? []);
  if (listeners.length === 0) return { ports: [], stop: () => Promise.resolve() };
  collectProcessMetrics(options.metrics);
  let stopping = false;
  const source: ReadinessSource = { ...options.readiness, stopping: () => stopping };
  // Problems a binding reports may quote an option that came from the environment.
  const redactor = options.redactor ?? new Redactor(options.readiness.config.substitutions);
  const log = options.logger;
  const probes = new ConnectionProbes({
    observer: probeMetrics(options.metrics),
    ...(options.probeTimeoutMs === undefined ? {} : { timeoutMs: options.probeTimeoutMs }),
    ...(options.probeReuseMs === undefined ? {} : { reuseMs: options.probeReuseMs }),
  });

  const handle = async (listener: Listener, request: IncomingMessage, response: ServerResponse) => {
    // Read as a path even when it starts with `//`, which a relative reference takes for a host.
    const target = request.url ?? '/';
    const path = target.startsWith('/') ? new URL(`http://localhost${target}`).pathname : target;
    const audience = audienceOf(request.socket.remoteAddress);
    const head = request.method === 'HEAD';
    if (request.method !== 'GET' && !head) {
      response.setHeader('allow', 'GET, HEAD');
      send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n', head);
    } else if (listener.paths.has(path)) {
      // kgate's own series, then those of the Zilla metrics the bindings collect, labelled with
      // the config's name as Zilla labels them with its namespace.
      const own = await options.metrics.metrics();
      const { name, bindings } = options.readiness.config;
      const zilla = zillaMetrics(options.metrics).render(name, bindings);
      send(response, 200, options.metrics.contentType, zilla === '' ? own : `${own}\n${zilla}`, head);
    } else if (path === '/health') {
      // Liveness only: answering at all proves the event loop runs; dependencies belong in /ready.
      send(response, 200, 'text/plain; charset=utf-8', 'ok\n', head);
    } else if (path === '/ready') {
      const readiness = await checkReadiness(source, probes, audience);
      const body = `${redactor.json(JSON.stringify(readiness))}\n`;
      // Not ready yet (Kafka not there, say) is worth asking again soon; the body says why.
      if (!readiness.ready) response.setHeader('retry-after', String(READY_RETRY_AFTER_SECONDS));
      send(response, readiness.ready ? 200 : 503, 'application/json', body, head);
    } else if (path === '/status') {
      // Always 200: the body reports health, and `kgate status` shows an unhealthy gateway too.
      const status = await collectStatus(source, probes, audience);
      send(response, 200, 'application/json', `${redactor.json(JSON.stringify(status))}\n`, head);
    } else {
      send(response, 404, 'text/plain; charset=utf-8', 'not found\n', head);
    }
  };

  const servers: Server[] = [];
  const stop = async (): Promise<void> => {
    stopping = true;
    await Promise.all(servers.map(close));
  };
  try {
    for (const listener of listeners) {
      const server = createServer((request, response) => {
        handle(listener, request, response).catch((error: unknown) => {
          log.error({ err: error, port: listener.port }, 'telemetry request failed');
          if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', 'error\n', false);
          else response.destroy();
        });
      });
      servers.push(server);
      await listen(server, listener);
      log.info(
        { exporter: listener.exporter, host: listener.host, port: listener.port, paths: [...listener.paths] },
        'telemetry listening',
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { ports: listeners.map((l) => l.port), stop };
}
