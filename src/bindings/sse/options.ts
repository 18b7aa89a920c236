/** An sse server's options as the schema admits them. */
export interface SseServerOptionsJson {
  readonly retry?: number;
}

export interface SseServerOptions {
  /** Reconnect delay sent to clients when a stream opens and ends; absent: none is sent. */
  readonly retryMs?: number;
}

/** An sse server's options that passed its schema. */
export function sseServerOptions(options: unknown): SseServerOptions {
  const json = options as SseServerOptionsJson;
  return json.retry === undefined ? {} : { retryMs: json.retry };
}
