// Entry of a worker thread (`kgate start --workers N`): runs the serving bindings of the config
// over the main thread's cache, on the same ports as the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { Engine, messageOf } from '../engine.ts';
import { createLogger } from '../logger.ts';
import { CacheRpcClient } from '../../bindings/kafka/threads/cache-rpc.ts';
import type { ControlReply, ControlRequest, WorkerInit } from './protocol.ts';
import { workerRegistry } from './registry.ts';

const control = parentPort;
if (control === null) throw new Error('worker.ts runs as a worker thread only');
const init = workerData as WorkerInit;
const logger = createLogger({ level: init.logLevel, pretty: init.prettyLogs === true }).child({
  thread: init.index,
});
const rpc = new CacheRpcClient(init.cachePort);
const engine = new Engine(init.config, workerRegistry(rpc), {
  logger,
  stateDir: init.stateDir,
  sharedListeners: true,
  ...(init.startTimeoutMs === undefined ? {} : { startTimeoutMs: init.startTimeoutMs }),
});

const reply = (message: ControlReply): void => control.postMessage(message);

async function stop(drainMs: number): Promise<void> {
  await engine.stop(drainMs);
  rpc.close();
  logger.flush();
  reply({ type: 'stopped' });
  control?.close();
}

// Requests come one at a time: the main thread waits for each answer before the next.
control.on('message', (message: ControlRequest) => {
  if (message.type === 'stop') void stop(message.drainMs);
  else
    engine.reload(message.config).then(
      () => reply({ type: 'reloaded' }),
      (error: unknown) => reply({ type: 'reloaded', error: messageOf(error) }),
    );
});

let failure: string | undefined;
try {
  await engine.start();
} catch (error) {
  failure = messageOf(error);
}
if (failure === undefined) {
  reply({ type: 'started' });
  // Test hook: a worker that dies on its own must take the whole process down.
  if (process.env['KGATE_TEST_FAULT'] === 'worker-exit-after-start' && init.index === 1)
    setTimeout(() => process.exit(3), 1_000);
} else {
  rpc.close();
  reply({ type: 'start-failed', message: failure });
  control.close();
}
