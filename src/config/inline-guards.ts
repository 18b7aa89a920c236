import { pointerOf } from './source.ts';

/**
 * Zilla's `inline` guards: an identity and credentials written in the config (from
 * `${{env.NAME}}`), which a kafka client's `authorization.<guard>.credentials` fields use as
 * `{identity}` and `{credentials}`. kgate takes nothing from a client's request for them: the
 * broker connections a cache shares between clients authenticate as kgate itself.
 */

export interface InlineGuardConfig {
  readonly identity?: string;
  readonly credentials?: string;
}

export interface GuardProblem {
  readonly pointer: string;
  readonly message: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The guards of type `inline`, by name. */
export function inlineGuards(section: unknown): Map<string, InlineGuardConfig> {
  const guards = new Map<string, InlineGuardConfig>();
  if (!isObject(section)) return guards;
  for (const [name, guard] of Object.entries(section)) {
    if (!isObject(guard) || guard['type'] !== 'inline') continue;
    const settings = isObject(guard['options']) ? guard['options'] : {};
    const identity = settings['identity'];
    const credentials = settings['credentials'];
    guards.set(name, {
      ...(typeof identity === 'string' ? { identity } : {}),
      ...(typeof credentials === 'string' ? { credentials } : {}),
    });
  }
  return guards;
}

const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'];

/**
 * What the kafka client would refuse at start in `authorization.<guard>.credentials`, whose
 * fields the schema leaves open: the mechanism (`plain` when absent) and the fields it needs.
 */
function credentialProblems(fields: Record<string, unknown>, at: (field?: string) => string): GuardProblem[] {
  const mechanism = typeof fields['mechanism'] === 'string' ? fields['mechanism'].toLowerCase() : 'plain';
  if (!MECHANISMS.includes(mechanism)) {
    return [{ pointer: at('mechanism'), message: `must be one of ${MECHANISMS.join(', ')}` }];
  }
  const needed = mechanism === 'oauthbearer' ? ['token'] : ['username', 'password'];
  return needed
    .filter((field) => typeof fields[field] !== 'string' || fields[field] === '')
    .map((field) => ({ pointer: at(), message: `${field} is required with mechanism ${mechanism}` }));
}

/**
 * A kafka client's `authorization` credentials as `start` would read them: a known mechanism with
 * the fields it needs, and each `{identity}` or `{credentials}` backed by an inline guard that has it.
 */
export function checkInlineGuards(
  bindings: unknown,
  guards: ReadonlyMap<string, InlineGuardConfig>,
): GuardProblem[] {
  const problems: GuardProblem[] = [];
  if (!isObject(bindings)) return problems;
  for (const [name, binding] of Object.entries(bindings)) {
    if (!isObject(binding) || binding['type'] !== 'kafka' || binding['kind'] !== 'client') continue;
    const settings = isObject(binding['options']) ? binding['options'] : {};
    const authorization = isObject(settings['authorization']) ? settings['authorization'] : {};
    for (const [guard, entry] of Object.entries(authorization)) {
      const fields = isObject(entry) && isObject(entry['credentials']) ? entry['credentials'] : {};
      const base = ['bindings', name, 'options', 'authorization', guard, 'credentials'];
      problems.push(
        ...credentialProblems(fields, (field) => pointerOf(field === undefined ? base : [...base, field])),
      );
      for (const [field, value] of Object.entries(fields)) {
        if (typeof value !== 'string') continue;
        for (const match of value.matchAll(/\{(identity|credentials)\}/g)) {
          const wanted = match[1] === 'identity' ? 'identity' : 'credentials';
          const inline = guards.get(guard);
          if (inline?.[wanted] !== undefined) continue;
          const pointer = pointerOf([
            'bindings',
            name,
            'options',
            'authorization',
            guard,
            'credentials',
            field,
          ]);
          problems.push({
            pointer,
            message:
              inline === undefined
                ? `{${wanted}} stands for the ${wanted} of an inline guard, and there is no inline guard named ${guard}`
                : `{${wanted}} stands for the ${wanted} of inline guard ${guard}, which has none`,
          });
        }
      }
    }
  }
  return problems;
}
