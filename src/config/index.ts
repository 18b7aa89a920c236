import { open } from 'node:fs/promises';
import { ConfigError, sortDiagnostics } from './diagnostics.ts';
import type { ConfigDiagnostic } from './diagnostics.ts';
import type { GuardConfig, Guarded } from '../guards/index.ts';
import { checkGuards, toGuards } from './guards.ts';
import { checkListeners } from './listeners.ts';
import { checkServedLocations } from './own-files.ts';
import type { CatalogsJson } from '../models/config.ts';
import { checkCatalogs } from './catalog-references.ts';
import { checkReferences } from './references.ts';
import type { Substitution } from './redact.ts';
import { bindingKinds, showValue, validateSchema } from './schema.ts';
import { CONFIG_LIMITS, displayPath, pointerOf, readSource } from './source.ts';
import type { Located, Position, Segment, Source } from './source.ts';
import { checkInlineGuards, inlineGuards, type InlineGuardConfig } from './inline-guards.ts';
import { checkVaults, toVaults } from './vaults.ts';
import type { VaultConfig } from '../vaults/vault.ts';
import { bindingMetrics, telemetryErrors, telemetryWarnings, toTelemetry } from './telemetry.ts';
import type { BindingTelemetryJson, TelemetryConfig } from './telemetry.ts';
import type { ZillaMetricName } from './telemetry-metrics.ts';

export { ConfigError, formatDiagnostic } from './diagnostics.ts';
export type { ConfigDiagnostic } from './diagnostics.ts';
export {
  compileCidr,
  compileGlob,
  compilePath,
  compilePathHeader,
  compilePorts,
  matchPath,
  matchTopic,
  NO_PARAMS,
  RouteTable,
} from './routes.ts';
export type { ConditionMatcher, PathMatcher, PortSpec, ResolvedRoute } from './routes.ts';
export { ANY, charClass, compilePattern } from './patterns.ts';
export type { CharClass, Pattern, Piece } from './patterns.ts';
export { TCP_DEFAULT_HOST } from './listeners.ts';
export { defaultCacheDir, ownFilesProblem, resolveBesideConfig } from './own-files.ts';
export type { OwnFiles } from './own-files.ts';
export { CONFIG_LIMITS } from './source.ts';
export { MIN_REDACTED_LENGTH, Redactor } from './redact.ts';
export type { Substitution } from './redact.ts';
export { DEFAULT_METRICS_PATH, DEFAULT_TELEMETRY_HOST } from './telemetry.ts';
export type { PrometheusEndpoint, PrometheusExporterConfig, TelemetryConfig } from './telemetry.ts';
export { prometheusName, ZILLA_METRICS } from './telemetry-metrics.ts';
export type { ZillaMetric, ZillaMetricName } from './telemetry-metrics.ts';

export interface LoadedConfig {
  file: string;
  name: string;
  /** In file order. */
  bindings: Map<string, BindingConfig>;
  warnings: ConfigDiagnostic[];
  /** The top-level `catalogs` as written; absent when the file has none. */
  catalogs?: CatalogsJson;
  /** Absent when the file has no telemetry section. */
  telemetry?: TelemetryConfig;
  /** The top-level `guards`, by name; absent when the file has none. */
  guards?: ReadonlyMap<string, GuardConfig>;
  /**
   * The `${{env.NAME}}` expressions substituted into strings and their values, so that whatever
   * prints text an option may have reached can put the expressions back (Redactor). Absent when
   * nothing was substituted.
   */
  substitutions?: readonly Substitution[];
}

export interface BindingConfig {
  name: string;
  type: string;
  kind: string;
  /** As validated by the schema for this type and kind; `{}` when absent. */
  options: Record<string, unknown>;
  /** In file order; `[]` when absent. */
  routes: RouteConfig[];
  exit?: string;
  /** The vault a tls binding names, its store paths resolved. */
  vault?: VaultConfig;
  /** A kafka client's: the config's inline guards, which its credentials may refer to. */
  guards?: { readonly [name: string]: InlineGuardConfig };
  /**
   * The Zilla metrics this binding collects (`telemetry.metrics` selected by the binding's own
   * `telemetry.metrics`); absent when it collects none.
   */
  metrics?: ZillaMetricName[];
}

export interface RouteConfig {
  /** Any one matching is enough; `[]` matches everything. */
  when: Record<string, unknown>[];
  exit: string;
  with?: Record<string, unknown>;
  /** The scopes each named guard must grant for a request to take the route. */
  guarded?: Guarded;
}

export const DEFAULT_NAME = 'kgate';

export function knownBindingTypes(): ReadonlyMap<string, readonly string[]> {
  return bindingKinds();
}

/**
 * The file's first bytes, up to one past the loader's size limit: enough to refuse a larger file
 * (or see that it changed) without reading all of it into memory.
 */
export async function readConfigBytes(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(CONFIG_LIMITS.maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}

export async function loadConfigFile(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  check?: BindingsCheck,
): Promise<LoadedConfig> {
  let bytes: Buffer;
  try {
    bytes = await readConfigBytes(file);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError([{ file, line: 0, column: 0, path: '', message: `cannot read file: ${reason}` }]);
  }
  if (bytes.length > CONFIG_LIMITS.maxBytes) {
    const message = `file is larger than the loader's limit of ${CONFIG_LIMITS.maxBytes} bytes`;
    throw new ConfigError([{ file, line: 0, column: 0, path: '', message }]);
  }
  return parseConfig(bytes.toString('utf8'), file, env, {
    fromFile: true,
    ...(check === undefined ? {} : { check }),
  });
}

/**
 * Checks of the bindings that only the bindings' own code can make (see bindings/config-checks.ts),
 * run once the file passed its schema: each problem names where in the config it is.
 */
export type BindingsCheck = (
  bindings: ReadonlyMap<string, BindingConfig>,
) => readonly { readonly segments: readonly Segment[]; readonly message: string }[];

export interface ParseOptions {
  /**
   * The text was read from `file`, which `kgate start` runs with the default cache directory
   * beside it unless told otherwise: static-file locations holding either are refused. A config
   * built in code names a file that need not exist and has a cache directory of its own.
   */
  readonly fromFile?: boolean;
  /** Run on the bindings once the file is otherwise valid; what it finds fails the load. */
  readonly check?: BindingsCheck;
}

export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: ParseOptions = {},
): LoadedConfig {
  const source = readSource(text, env);
  const at = (position: Position, path: string, message: string): ConfigDiagnostic => ({
    file,
    line: position.line,
    column: position.column,
    path,
    message,
  });
  const yamlWarnings = source.yamlWarnings.map((p) => at(p.position, '', p.message));
  if (source.yamlErrors.length > 0) {
    throw configError(source.yamlErrors.map((p) => at(p.position, '', p.message)));
  }
  if (source.data === null || source.data === undefined) {
    throw new ConfigError([at({ line: 1, column: 1 }, '', 'file is empty; expected name and bindings')]);
  }

  const locate = (pointer: string): Located => nearest(source, pointer);
  // A substituted value may be a secret: messages quote the file's text for it instead.
  const show = (pointer: string, value: unknown): string => {
    const written = source.written.get(pointer);
    return written === undefined ? showValue(pointer, value) : `"${written}"`;
  };
  const errors: ConfigDiagnostic[] = [];
  const envPointers = new Set<string>();
  for (const problem of source.envErrors) {
    envPointers.add(problem.pointer);
    errors.push(at(problem.position, displayPath(locate(problem.pointer).segments), problem.message));
  }

  for (const problem of validateSchema(source.data, show)) {
    // An unset variable leaves the expression text in place, which rarely fits the schema; say it once.
    if (envPointers.has(problem.pointer)) continue;
    const located = locate(problem.pointer);
    const position = problem.anchor === 'key' ? (located.key ?? located.value) : located.value;
    const segments: Segment[] = problem.parentPath ? located.segments.slice(0, -1) : [...located.segments];
    if (problem.missing !== undefined) segments.push(problem.missing);
    errors.push(at(position, displayPath(segments), problem.message));
  }

  const data = source.data as Record<string, unknown>;
  for (const problem of checkReferences(data['bindings'], show)) {
    const located = locate(problem.pointer);
    errors.push(at(located.value, displayPath(located.segments), problem.message));
  }
  for (const problem of checkGuards(data)) {
    const located = locate(problem.pointer);
    errors.push(at(located.value, displayPath(located.segments), problem.message));
  }
  for (const problem of checkListeners(data)) {
    const located = locate(problem.pointer);
    errors.push(at(located.value, displayPath(located.segments), problem.message));
  }
  for (const problem of telemetryErrors(data['bindings'])) {
    const located = locate(pointerOf(problem.segments));
    errors.push(at(located.value, displayPath(problem.segments), problem.message));
  }

  // Only on a config that passed its schema: catalogs and models have the shapes they are read as.
  if (errors.length === 0) {
    for (const problem of checkCatalogs(data, options.fromFile === true ? file : undefined)) {
      const located = locate(problem.pointer);
      errors.push(at(located.value, displayPath(located.segments), problem.message));
    }
  }

  // Only on a config that passed its schema, so that every location is a string.
  if (errors.length === 0 && options.fromFile === true) {
    for (const problem of checkServedLocations(data['bindings'], file, env)) {
      const located = locate(problem.pointer);
      errors.push(at(located.value, displayPath(located.segments), problem.message));
    }
  }

  const vaults = errors.length === 0 ? toVaults(data['vaults'], file) : new Map<string, VaultConfig>();
  const guards = inlineGuards(data['guards']);
  if (errors.length === 0) {
    for (const problem of checkInlineGuards(data['bindings'], guards)) {
      const located = locate(problem.pointer);
      errors.push(at(located.value, displayPath(located.segments), problem.message));
    }
    for (const problem of checkVaults(data, vaults, { show, fromFile: options.fromFile === true })) {
      const located = locate(problem.pointer);
      errors.push(at(located.value, displayPath(located.segments), problem.message));
    }
  }

  if (errors.length > 0) throw configError(errors);

  const bindings = toBindings(
    data['bindings'] as Record<string, Record<string, unknown>>,
    vaults,
    guards,
    data['telemetry'],
  );
  for (const problem of options.check?.(bindings) ?? []) {
    const located = locate(pointerOf([...problem.segments]));
    errors.push(at(located.value, displayPath(located.segments), problem.message));
  }
  if (errors.length > 0) throw configError(errors);

  const warnings = [...yamlWarnings, ...ignoredFeatures(data, locate, at)];
  const config: LoadedConfig = {
    file,
    name: typeof data['name'] === 'string' ? data['name'] : DEFAULT_NAME,
    bindings,
    warnings: sortDiagnostics(warnings),
  };
  if ('telemetry' in data) config.telemetry = toTelemetry(data['telemetry']);
  if (isObject(data['catalogs'])) config.catalogs = data['catalogs'] as CatalogsJson;
  if ('guards' in data) config.guards = toGuards(data['guards']);
  if (source.substitutions.length > 0) {
    // Aliases and repeated references substitute the same expression more than once.
    const unique = new Map(source.substitutions.map((s) => [`${s.reference}\n${s.value}`, s]));
    config.substitutions = [...unique.values()];
  }
  return config;
}

/** The file's errors in order, as many as the loader reports and one line for the rest. */
function configError(errors: readonly ConfigDiagnostic[]): ConfigError {
  const sorted = sortDiagnostics(errors);
  const shown = sorted.slice(0, CONFIG_LIMITS.maxDiagnostics);
  const last = shown.at(-1);
  if (last !== undefined && sorted.length > shown.length) {
    const more = sorted.length - shown.length;
    shown.push({ ...last, path: '', message: `and ${more} more problem${more === 1 ? '' : 's'}, not shown` });
  }
  return new ConfigError(shown);
}

/** The location of the pointer, or of its closest ancestor that exists in the file. */
function nearest(source: Source, pointer: string): Located {
  let current = pointer;
  for (;;) {
    const found = source.locations.get(current);
    if (found) return found;
    if (current === '') return { segments: [], value: { line: 1, column: 1 } };
    current = current.slice(0, current.lastIndexOf('/'));
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function ignoredFeatures(
  data: Record<string, unknown>,
  locate: (pointer: string) => Located,
  at: (position: Position, path: string, message: string) => ConfigDiagnostic,
): ConfigDiagnostic[] {
  const warnings: ConfigDiagnostic[] = [];
  const warn = (segments: Segment[], message: string): void => {
    const located = locate(pointerOf(segments));
    warnings.push(at(located.key ?? located.value, displayPath(segments), message));
  };
  for (const warning of telemetryWarnings(data['telemetry'], data['bindings'])) {
    warn(warning.segments, warning.message);
  }
  const bindings = isObject(data['bindings']) ? data['bindings'] : {};
  for (const [name, binding] of Object.entries(bindings)) {
    if (!isObject(binding)) continue;
    if ('vault' in binding && binding['type'] !== 'tls') {
      warn(['bindings', name, 'vault'], 'only tls bindings use a vault; ignored');
    }
    const routes = Array.isArray(binding['routes']) ? (binding['routes'] as unknown[]) : [];
    if (binding['type'] === 'tcp' && binding['kind'] === 'client' && routes.length > 0) {
      warn(['bindings', name, 'routes'], 'kgate does not restrict tcp client destinations, ignored');
    }
  }
  return warnings;
}

function toBindings(
  bindings: Record<string, Record<string, unknown>>,
  vaults: ReadonlyMap<string, VaultConfig>,
  guards: ReadonlyMap<string, InlineGuardConfig>,
  telemetry: unknown,
): Map<string, BindingConfig> {
  const out = new Map<string, BindingConfig>();
  for (const [name, raw] of Object.entries(bindings)) {
    const type = String(raw['type']);
    const kind = String(raw['kind']);
    const options = isObject(raw['options']) ? { ...raw['options'] } : {};
    // tcp client routes only restrict destinations in Zilla; they have no exit and kgate ignores them.
    const ignoreRoutes = type === 'tcp' && kind === 'client';
    const routes =
      ignoreRoutes || !Array.isArray(raw['routes']) ? [] : (raw['routes'] as Record<string, unknown>[]);
    const binding: BindingConfig = {
      name,
      type,
      kind,
      options,
      routes: routes.map((route) => {
        const config: RouteConfig = {
          when: Array.isArray(route['when']) ? (route['when'] as Record<string, unknown>[]) : [],
          exit: String(route['exit']),
        };
        if (isObject(route['with'])) config.with = route['with'];
        if (isObject(route['guarded'])) config.guarded = route['guarded'] as Guarded;
        return config;
      }),
    };
    if (typeof raw['exit'] === 'string') binding.exit = raw['exit'];
    const vault = typeof raw['vault'] === 'string' ? vaults.get(raw['vault']) : undefined;
    if (vault !== undefined && type === 'tls') binding.vault = vault;
    if (type === 'kafka' && kind === 'client' && guards.size > 0) binding.guards = Object.fromEntries(guards);
    if (isObject(raw['telemetry'])) {
      const selected = bindingMetrics(telemetry, {
        type,
        kind,
        telemetry: raw['telemetry'] as BindingTelemetryJson,
      });
      if (selected.length > 0) binding.metrics = selected;
    }
    out.set(name, binding);
  }
  return out;
}
