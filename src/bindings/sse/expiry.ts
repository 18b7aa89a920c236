import type { GuardSession } from '../../guards/index.ts';
import type { SseStream } from '../north.ts';

/**
 * A stream a token authorised lives no longer than the token: it ends when the token expires.
 * When the guard has a `challenge`, that many seconds before the end the client gets a
 * `challenge` event, framed as Zilla's sse binding frames it, so a page can fetch a new token and
 * reconnect with it and its `Last-Event-ID` before the stream ends, losing no event.
 */

export const CHALLENGE_EVENT = 'challenge';

/** The challenge's data as Zilla writes it: how to present renewed credentials. */
export const CHALLENGE_DATA = JSON.stringify({
  method: 'POST',
  headers: { 'content-type': 'application/x-challenge-response' },
});

// setTimeout fires at once for delays past a signed 32-bit count of milliseconds (about 24.8 days).
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs `action` at epoch millisecond `at`, however far away; returns how to cancel it. */
function at(when: number, action: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const delay = when - Date.now();
    if (delay <= 0) {
      action();
      return;
    }
    timer = setTimeout(arm, Math.min(delay, MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/** Challenges and then ends `stream` as `session` expires; returns how to stop watching. */
export function watchExpiry(stream: SseStream, session: GuardSession): () => void {
  const { expiresAt, challengeAt } = session;
  if (expiresAt === undefined) return () => {};
  const cancels: (() => void)[] = [];
  if (challengeAt !== undefined && challengeAt < expiresAt && challengeAt > Date.now())
    cancels.push(at(challengeAt, () => stream.send({ type: CHALLENGE_EVENT, data: CHALLENGE_DATA })));
  cancels.push(at(expiresAt, () => stream.close()));
  return () => {
    for (const cancel of cancels) cancel();
  };
}
