import fc from 'fast-check';
import { cpuTimed } from './cpu-time.ts';

// The fuzz targets (test/unit/fuzz-*.test.ts) run in `npm test` with a fixed seed and a few hundred
// runs each, so CI replays the same inputs every time and stays fast. A longer run takes the same
// tests with more runs and another seed:
//   KGATE_FUZZ_RUNS=200000 KGATE_FUZZ_SEED=$RANDOM node --test test/unit/fuzz-*.test.ts
// A failure prints the seed, the path to the shrunk input and the input itself; a run with that
// seed (and `path`, which fast-check prints too) replays it.

const DEFAULT_SEED = 17;

function fromEnv(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, not ${text}`);
  return value;
}

/** The seed every target runs with. */
export const FUZZ_SEED = fromEnv('KGATE_FUZZ_SEED') ?? DEFAULT_SEED;

/** Runs of a target: `ciRuns` in `npm test`, KGATE_FUZZ_RUNS when set. */
export function fuzzRuns(ciRuns: number): number {
  return fromEnv('KGATE_FUZZ_RUNS') ?? ciRuns;
}

/** The parameters of one target. */
export function fuzzParameters<T>(ciRuns: number): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns: fuzzRuns(ciRuns) };
}

/**
 * Text that hits a parser's separators and escapes far more often than random text would: runs
 * of `alphabet`, random UTF-16 (lone surrogates included) and random bytes read as latin1, mixed.
 */
export function hostileText(alphabet: readonly string[], maxLength = 200): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...alphabet), maxLength }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength }) },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength }).map((bytes) => Buffer.from(bytes).toString('latin1')),
    },
  );
}

/** `text` with a few characters inserted, removed or replaced at random places. */
export function mutated(text: fc.Arbitrary<string>, alphabet: readonly string[]): fc.Arbitrary<string> {
  const edit = fc.record({
    at: fc.nat(),
    remove: fc.nat({ max: 3 }),
    insert: fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 4 }),
  });
  return fc.tuple(text, fc.array(edit, { maxLength: 6 })).map(([start, edits]) =>
    edits.reduce((out, { at, remove, insert }) => {
      const where = out.length === 0 ? 0 : at % (out.length + 1);
      return out.slice(0, where) + insert + out.slice(where + remove);
    }, start),
  );
}

/**
 * Milliseconds of CPU time `run` takes, and what it returned: a bound on it catches a call that
 * does too much work without failing when a loaded machine makes the same work slow.
 */
export function timed<T>(run: () => T): { readonly ms: number; readonly value: T } {
  return cpuTimed(run);
}
