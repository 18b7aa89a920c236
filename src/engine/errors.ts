/**
 * kgate's error codes. Every error a client can see carries a stable string `code`, and this table
 * is the one place that says what each code means and which HTTP status answers it: statuses are
 * read from codes, never guessed from message text, so rewording a message cannot change an
 * answer, and a code survives where a class does not (across worker threads, in a log line).
 *
 * `retriable` says whether the condition may pass by itself, so that the same request may succeed
 * later. It is the client's view; the Kafka client's own `retriable` (whether a metadata refresh
 * and another attempt inside kgate can succeed) is a property of each of its errors.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly retriable: boolean;
  readonly meaning: string;
}

export const ERROR_CODES = {
  KGATE_BAD_REQUEST: {
    status: 400,
    retriable: false,
    meaning: 'the request is malformed, or its body did not arrive whole',
  },
  KGATE_INVALID_ARGUMENT: {
    status: 400,
    retriable: false,
    meaning: 'a call through the TypeScript API has an argument it cannot take (filters, progress, binding)',
  },
  KGATE_INVALID_REQUEST: {
    status: 400,
    retriable: false,
    meaning: 'the broker refused what was sent: a corrupt or invalid record, or an invalid topic name',
  },
  KGATE_INVALID_CONTENT: {
    status: 400,
    retriable: false,
    meaning:
      "a request body does not fit the model of the route's `options.requests` or of the topic's value or key: the message names the field and the schema",
  },
  KGATE_UNAUTHENTICATED: {
    status: 401,
    retriable: false,
    meaning: 'a guarded route takes the request only with valid credentials, and it carried none that verify',
  },
  KGATE_FORBIDDEN: {
    status: 403,
    retriable: false,
    meaning:
      "the request's credentials verify, but do not grant what the route requires (a scope, an identity)",
  },
  KGATE_NOT_AUTHORIZED: {
    status: 403,
    retriable: false,
    meaning: 'the broker refused kgate access to the topic (an *_AUTHORIZATION_FAILED error)',
  },
  KGATE_NOT_FOUND: {
    status: 404,
    retriable: false,
    meaning: 'nothing at this path: no route takes it, no file is there, or no message matches',
  },
  KGATE_TOPIC_NOT_FOUND: {
    status: 404,
    retriable: false,
    meaning: 'the topic is not in the Kafka cluster',
  },
  KGATE_TOPIC_NAME_INVALID: {
    status: 404,
    retriable: false,
    meaning:
      'the topic a route makes of this path (`${params.*}` in its `topic`) is not a legal Kafka topic name; no broker was asked',
  },
  KGATE_METHOD_NOT_ALLOWED: {
    status: 405,
    retriable: false,
    meaning: 'a route takes the path, but not with this method',
  },
  KGATE_NOT_ACCEPTABLE: {
    status: 406,
    retriable: false,
    meaning: 'the resource cannot be served in a type the request accepts',
  },
  KGATE_BODY_TIMEOUT: {
    status: 408,
    retriable: true,
    meaning: 'a request body stopped arriving, or did not arrive whole within its deadline',
  },
  KGATE_BODY_TOO_LARGE: {
    status: 413,
    retriable: false,
    meaning: "a request body larger than the binding's limit for bodies it buffers",
  },
  KGATE_MESSAGE_TOO_LARGE: {
    status: 413,
    retriable: false,
    meaning: "a message larger than the topic's max.message.bytes allows",
  },
  KGATE_STAGING_BUDGET_EXCEEDED: {
    status: 413,
    retriable: false,
    meaning: "a message larger than the cache_client's whole staging budget",
  },
  KGATE_INTERNAL: {
    status: 500,
    retriable: false,
    meaning: 'something unexpected: a broken invariant or a binding not started, written to the log',
  },
  KGATE_RESPONSE_TOO_LARGE: {
    status: 500,
    retriable: false,
    meaning: 'the answer would pass what kgate builds in memory (a merged document past 16 MiB)',
  },
  KGATE_TEMPLATE_NO_VALUE: {
    status: 500,
    retriable: false,
    meaning: 'a route template names a value this request does not have: the route is at fault',
  },
  KGATE_CONFIG_INVALID: {
    status: 500,
    retriable: false,
    meaning: 'the config does not load; its diagnostics say where',
  },
  KGATE_CLI_USAGE: {
    status: 500,
    retriable: false,
    meaning: 'the kgate command was used in a way it cannot run',
  },
  KGATE_KAFKA_FAILED: {
    status: 502,
    retriable: false,
    meaning: 'Kafka, or the cache chain in front of it, failed in a way another try will not fix',
  },
  KGATE_KAFKA_AUTHENTICATION_FAILED: {
    status: 502,
    retriable: false,
    meaning: "the broker refused kgate's SASL credentials",
  },
  KGATE_KAFKA_TLS_FAILED: {
    status: 502,
    retriable: false,
    meaning: "the broker's TLS certificate is not trusted, or the TLS handshake failed",
  },
  KGATE_INVALID_REPLY: {
    status: 502,
    retriable: false,
    meaning:
      'the service behind a request-reply route replied with a :status that is not a final HTTP status (200 to 599)',
  },
  KGATE_KAFKA_UNAVAILABLE: {
    status: 503,
    retriable: true,
    meaning:
      'Kafka could not be reached (since start, or within the wait a route allows) or timed out, or answered with an error that may pass',
  },
  KGATE_KAFKA_TIMEOUT: {
    status: 503,
    retriable: true,
    meaning:
      "a broker answers, but what the request waits for (a topic's metadata or config, a partition's leader, a producer id) did not come within the route's kafka-timeout",
  },
  KGATE_INGEST_PAUSED: {
    status: 503,
    retriable: true,
    meaning: "the cache's disk is full: ingest is paused until space frees up",
  },
  KGATE_OVERLOADED: {
    status: 503,
    retriable: true,
    meaning:
      'a bound on work in flight was reached (requests on one connection, topic reads for answers, parked waits); `Retry-After` says when to try again',
  },
  KGATE_TOPIC_LIMIT: {
    status: 503,
    retriable: true,
    meaning:
      'the cache follows as many topics named by requests as its `limits.requested-topics` allows, each of them in use: another is followed once one is released',
  },
  KGATE_SCHEMA_UNAVAILABLE: {
    status: 503,
    retriable: true,
    meaning:
      'a schema the request needs is not known yet and its catalog (a schema registry) could not be reached or did not answer with it; values already converted are still served',
  },
  KGATE_SHUTTING_DOWN: {
    status: 503,
    retriable: true,
    meaning: 'this instance is shutting down; another, or this one restarted, can serve the request',
  },
  KGATE_NOT_CAUGHT_UP: {
    status: 504,
    retriable: true,
    meaning: 'the cache did not catch up with the topic within its bound',
  },
  KGATE_PRODUCE_OUTCOME_UNKNOWN: {
    status: 504,
    retriable: false,
    meaning:
      'a message was sent to Kafka but whether Kafka wrote it could not be learned within its deadline: check before sending it again',
  },
  KGATE_REPLY_TIMEOUT: {
    status: 504,
    retriable: false,
    meaning: 'no reply came within the wait of a request-reply route (the request itself was produced)',
  },
  KGATE_CACHE_EVICTED: {
    status: 507,
    retriable: false,
    meaning:
      "nothing in the cache matches, but the cache's byte budget evicted records of the topic that Kafka may still hold: the answer is unknown",
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** The HTTP status that answers `code`. */
export function statusOf(code: ErrorCode): number {
  return ERROR_CODES[code].status;
}

/**
 * An error with a code from the table. Subclasses keep their state in public fields (no `#private`
 * ones): an error rebuilt on another thread gets its fields back, not its constructor run.
 */
export class KgateError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** The HTTP status that answers this error. */
  get status(): number {
    return statusOf(this.code);
  }
}

/** How far a cause chain is followed; chains are short, and a cycle must not hang anyone. */
export const MAX_CAUSES = 8;

/** `error` and its causes, outermost first. */
export function causesOf(error: unknown): unknown[] {
  const out: unknown[] = [];
  let at: unknown = error;
  while (at !== undefined && at !== null && out.length < MAX_CAUSES) {
    out.push(at);
    at = at instanceof Error ? at.cause : undefined;
  }
  return out;
}

/**
 * The code of the first error along the cause chain that has one from the table. An outer code
 * wins: a wrapper that chose a code knows more about what failed than what it wraps. Codes
 * outside the table (Node's `ECONNRESET`, say) are passed over.
 */
export function errorCodeOf(error: unknown): ErrorCode | undefined {
  for (const e of causesOf(error)) {
    const code: unknown = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
    if (isErrorCode(code)) return code;
  }
  return undefined;
}

/** The HTTP status for `error`: its code's, else `fallback`'s (an unexpected error by default). */
export function httpStatusOf(error: unknown, fallback: ErrorCode = 'KGATE_INTERNAL'): number {
  return statusOf(errorCodeOf(error) ?? fallback);
}
