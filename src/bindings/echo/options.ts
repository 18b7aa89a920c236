/**
 * The echo server takes no options, as in Zilla: its schema refuses `options`, `routes` and
 * `exit`, so an echo binding is only ever the end of a chain.
 */
export type EchoServerOptionsJson = Readonly<Record<string, never>>;

/** What the echo server reads of its options: nothing (they passed a schema that allows none). */
export function echoServerOptions(_options: unknown): EchoServerOptionsJson {
  return {};
}
