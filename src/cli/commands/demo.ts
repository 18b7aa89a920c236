import { fileURLToPath } from 'node:url';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composition } from '../../bindings/index.ts';
import { startKafka } from '../../embedded/kafka/index.ts';
import type { KafkaCluster } from '../../embedded/kafka/types.ts';
import { createLogger } from '../../engine/logger.ts';
import { startGateway, type Running } from '../../engine/runtime.ts';
import { describeDemo } from '../demo-report.ts';
import { CliError } from '../config-file.ts';

export interface DemoOptions {
  /** commander turns `--no-broker` into `broker: false`. */
  readonly broker: boolean;
  readonly exitAfter?: number;
}

const DEMO_CONFIG = fileURLToPath(new URL('../../../examples/demo.yaml', import.meta.url));
const DEMO_TOPIC = 'items';
const DEFAULT_PORT = '7114';

/**
 * The embedded default: a broker of its own unless told to use one, kgate in front of it with the
 * demo config, a report of what kgate sees, then it runs until a signal (or --exit-after).
 */
export async function demoCommand(options: DemoOptions): Promise<void> {
  const logger = createLogger();
  const external = process.env['KAFKA_BOOTSTRAP_SERVER'];
  if (!options.broker && (external === undefined || external === '')) {
    throw new CliError('--no-broker needs KAFKA_BOOTSTRAP_SERVER set to a reachable broker (host:port)');
  }
  let cluster: KafkaCluster | undefined;
  let running: Running | undefined;
  const shutdown = async (): Promise<void> => {
    await running?.stop(10_000);
    await cluster?.stop();
  };
  try {
    let bootstrap = external;
    if (options.broker && (external === undefined || external === '')) {
      process.stdout.write(
        'Starting a local Apache Kafka broker (the first run downloads its jars through Maven)...\n',
      );
      cluster = await startKafka({ brokers: 1 });
      await cluster.createTopic(DEMO_TOPIC, { partitions: 3, configs: { 'cleanup.policy': 'compact' } });
      bootstrap = cluster.bootstrap;
    }
    if (bootstrap === undefined) throw new CliError('no broker to use');
    const stateDir = await mkdtemp(join(tmpdir(), 'kgate-demo-'));
    running = await startGateway({
      configFile: DEMO_CONFIG,
      composition,
      logger,
      stateDir,
      env: {
        ...process.env,
        KAFKA_BOOTSTRAP_SERVER: bootstrap,
        KGATE_DEMO_PORT: process.env['KGATE_DEMO_PORT'] ?? DEFAULT_PORT,
      },
    });
    process.stdout.write(await describeDemo(running, bootstrap, DEMO_TOPIC));
  } catch (error) {
    await shutdown();
    throw error;
  }

  let stopping = false;
  const stop = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    shutdown().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.fatal({ err: error }, 'demo failed to stop cleanly');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (options.exitAfter !== undefined) setTimeout(stop, options.exitAfter * 1000).unref();
  // Keeps the process alive until a signal even if no binding holds an open handle.
  setInterval(() => undefined, 1 << 30);
}
