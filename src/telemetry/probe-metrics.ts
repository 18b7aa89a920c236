import { Counter, type Registry } from 'prom-client';
import { perRegistry } from './per-registry.ts';
import type { ProbeObserver } from './readiness.ts';

/**
 * How often `/ready` and `/status` checked a binding's broker connection, and how often they took
 * the answer of another check instead: with the connection gone each check is a broker login, so
 * `kgate_telemetry_connection_checks_total{outcome="problem"}` is what telemetry cost the broker.
 */
const counters = perRegistry((registers) => ({
  checks: new Counter({
    name: 'kgate_telemetry_connection_checks_total',
    help: 'Broker connection checks made for /ready and /status, by binding and outcome',
    labelNames: ['binding', 'outcome'],
    registers,
  }),
  reused: new Counter({
    name: 'kgate_telemetry_connection_checks_reused_total',
    help: 'Answers to /ready and /status taken from a check in flight or a problem found less than 5 s before',
    labelNames: ['binding'],
    registers,
  }),
}));

export function probeMetrics(registry: Registry): ProbeObserver {
  const { checks, reused } = counters(registry);
  return {
    checked: (binding, problem) => checks.inc({ binding, outcome: problem ? 'problem' : 'ok' }),
    reused: (binding) => reused.inc({ binding }),
  };
}
