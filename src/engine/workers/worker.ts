// Entry of a worker thread (`kgate start --workers N`): runs the config's bindings on the same
// ports as the main thread, built from the composition the main thread names, with each thread
// service's client connected to the main thread over its port.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Redactor } from '../../config/index.ts';
import { importComposition } from '../composition.ts';
import { Engine, messageOf } from '../engine.ts';
import { createLogger } from '../logger.ts';
import type { BindingRegistry } from '../registry.ts';
import type { ControlReply, ControlRequest, WorkerInit } from './protocol.ts';
import type { ServiceClient } from './service.ts';
import { exitWhenGatewayStarted } from './test-fault.ts';

const control = parentPort;
if (control === null) throw new Error('worker.ts runs as a worker thread only');
const init = workerData as WorkerInit;
const redactor = new Redactor(init.config.substitutions);
const logger = createLogger({ level: init.logLevel, pretty: init.prettyLogs === true, redactor }).child({
  thread: init.index,
});
const composition = await importComposition(init.composition);
const clients: ServiceClient[] = composition.threadServices.map((service) =>
  service.client(portOf(service.name)),
);
const engine = new Engine(init.config, threadRegistry(composition.registry()), {
  logger,
  stateDir: init.stateDir,
  sharedListeners: true,
});

function portOf(service: string): MessagePort {
  const port = init.ports[service];
  if (port === undefined) throw new Error(`no port for thread service ${service}`);
  return port;
}

/** The registry as every service's client adapts it for this thread, in composition order. */
function threadRegistry(registry: BindingRegistry): BindingRegistry {
  return registry.map((type, kind, factory) =>
    clients.reduce((adapted, client) => client.factory(type, kind, adapted), factory),
  );
}

function closeClients(): void {
  for (const client of clients) client.close();
}

const reply = (message: ControlReply): void => control.postMessage(message);

async function stop(drainMs: number): Promise<void> {
  await engine.stop(drainMs);
  closeClients();
  logger.flush();
  reply({ type: 'stopped' });
  control?.close();
}

// Requests come one at a time: the main thread waits for each answer before the next.
control.on('message', (message: ControlRequest) => {
  if (message.type === 'stop') void stop(message.drainMs);
  else {
    redactor.add(message.config.substitutions ?? []);
    engine.reload(message.config).then(
      () => reply({ type: 'reloaded' }),
      (error: unknown) => reply({ type: 'reloaded', error: messageOf(error) }),
    );
  }
});

let failure: string | undefined;
try {
  await engine.start();
} catch (error) {
  failure = messageOf(error);
}
if (failure === undefined) {
  // Test hook: a worker that dies on its own must take the whole process down.
  exitWhenGatewayStarted(init.index);
  reply({ type: 'started' });
} else {
  closeClients();
  reply({ type: 'start-failed', message: failure });
  control.close();
}
