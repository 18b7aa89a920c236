import type { Registry } from 'prom-client';

// Zilla's events (the `stdout` exporter's lines), raised by the bindings where kgate has the same
// moment: a request accepted, a broker connection failed, a TLS handshake failed, the engine
// started or stopped. Raising one costs a property check while no stdout exporter is configured.

/** Where event lines go; see StdoutExporter. */
export interface EventSink {
  write(line: string): void;
  /** Writes what is held back now. */
  flush(): void;
}

/** Zilla's engine events carry this qualified name instead of a binding's. */
export const ENGINE_QNAME = 'engine:events';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

/** `dd/MMM/yyyy:HH:mm:ss Z` in local time, as Zilla's stdout exporter writes its timestamps. */
export function eventTime(date: Date): string {
  const offset = -date.getTimezoneOffset();
  const sign = offset < 0 ? '-' : '+';
  const hours = Math.floor(Math.abs(offset) / 60);
  const minutes = Math.abs(offset) % 60;
  return (
    `${two(date.getDate())}/${MONTHS[date.getMonth()]}/${date.getFullYear()}:` +
    `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())} ${sign}${two(hours)}${two(minutes)}`
  );
}

/**
 * One line as Zilla's stdout exporter prints it:
 * `{namespace}:{binding} [{time}] [{trace id as 16 hex digits}d] {EVENT_NAME} {text}`. kgate has
 * no trace ids, so the id is always zero; the `d` after it is in Zilla's format too.
 */
export function eventLine(qname: string, date: Date, name: string, text: string): string {
  return `${qname} [${eventTime(date)}] [0000000000000000d] ${name} ${text}\n`;
}

/** The events of one registry's bindings, printed by the stdout exporter while one is configured. */
export class ZillaEvents {
  #sink: EventSink | undefined = undefined;
  #namespace = '';

  /** Whether a stdout exporter takes events: a binding checks it before building an event's text. */
  get enabled(): boolean {
    return this.#sink !== undefined;
  }

  /** Events go to `sink` from now on, qualified with `namespace` (the config's name); undefined: nowhere. */
  exportTo(sink: EventSink | undefined, namespace: string): void {
    this.#sink = sink;
    this.#namespace = namespace;
  }

  /** Before an exit: lines raised so far go out now rather than on the next turn of the loop. */
  flush(): void {
    this.#sink?.flush();
  }

  #emit(qname: string, name: string, text: string): void {
    this.#sink?.write(eventLine(qname, new Date(), name, text));
  }

  #binding(binding: string, name: string, text: string): void {
    if (this.#sink !== undefined) this.#emit(`${this.#namespace}:${binding}`, name, text);
  }

  engineStarted(): void {
    if (this.#sink !== undefined) this.#emit(ENGINE_QNAME, 'ENGINE_STARTED', 'Engine Started.');
  }

  engineStopped(): void {
    if (this.#sink !== undefined) this.#emit(ENGINE_QNAME, 'ENGINE_STOPPED', 'Engine Stopped.');
  }

  /** `identity` is the guard's name for the client; kgate has no guards, so `-` as in Zilla without one. */
  requestAccepted(binding: string, method: string, scheme: string, authority: string, path: string): void {
    this.#binding(binding, 'BINDING_HTTP_REQUEST_ACCEPTED', `- ${method} ${scheme}://${authority}${path}`);
  }

  brokerConnectionFailed(binding: string, host: string, port: number): void {
    this.#binding(
      binding,
      'BINDING_KAFKA_BROKER_CONNECTION_FAILED',
      `Broker connection failed for host (${host}), port (${port}).`,
    );
  }

  tlsHandshakeFailed(binding: string): void {
    this.#binding(
      binding,
      'BINDING_TLS_HANDSHAKE_FAILED',
      'The client and server could not negotiate the desired level of security.',
    );
  }

  tlsHandshakeTimeout(binding: string): void {
    this.#binding(
      binding,
      'BINDING_TLS_HANDSHAKE_TIMEOUT',
      'The handshake did not complete before the timeout expired.',
    );
  }
}

const byRegistry = new WeakMap<Registry, ZillaEvents>();

/** The events of the bindings that share a registry (one thread's engine). */
export function zillaEvents(registry: Registry): ZillaEvents {
  let found = byRegistry.get(registry);
  if (found === undefined) {
    found = new ZillaEvents();
    byRegistry.set(registry, found);
  }
  return found;
}
