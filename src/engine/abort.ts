/**
 * `promise`, or a rejection with the signal's reason as soon as `signal` aborts (an Error made of
 * `what` when the reason is not one). The promise itself runs on: a caller that gives up on
 * something shared must not cancel it for the others.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, what = 'aborted'): Promise<T> {
  const reason = (): Error => (signal.reason instanceof Error ? signal.reason : new Error(what));
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
