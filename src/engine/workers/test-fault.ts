// Test hook, for tests only: `KGATE_TEST_FAULT=worker-exit-after-start` makes worker thread 1 exit
// on its own once the whole gateway has started, so tests can watch a worker's death take the
// process down. The worker cannot tell by itself when that is (the main thread starts telemetry
// after the workers), so the main thread says so on a broadcast channel. Unset, or any other
// value, it does nothing.
import { BroadcastChannel } from 'node:worker_threads';

const FAULT = 'worker-exit-after-start';
const CHANNEL = 'kgate-test-fault';

/** In worker thread 1, before it reports started: exits with code 3 when the gateway has started. */
export function exitWhenGatewayStarted(index: number, env: NodeJS.ProcessEnv = process.env): void {
  if (env['KGATE_TEST_FAULT'] !== FAULT || index !== 1) return;
  const channel = new BroadcastChannel(CHANNEL);
  // Listening must not keep a stopping worker alive.
  channel.unref();
  channel.onmessage = () => process.exit(3);
}

/** In the main thread, once `kgate start` has logged that it started. */
export function announceGatewayStarted(env: NodeJS.ProcessEnv = process.env): void {
  if (env['KGATE_TEST_FAULT'] !== FAULT) return;
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage('started');
  channel.close();
}
