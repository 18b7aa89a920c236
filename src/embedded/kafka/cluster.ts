import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as admin from './admin.ts';
import {
  LOG4J2_PROPERTIES,
  nodePorts,
  PORTS_PER_NODE,
  scramArguments,
  serverProperties,
  type ClusterLayout,
  type NodeLayout,
  type Users,
} from './broker-config.ts';
import { BrokerProcess, formatStorage, type JvmOptions } from './broker-process.ts';
import { createTestCa, issueCertificate } from './certificates.ts';
import { produceWithKcat } from './kcat.ts';
import { ensureKafkaLibs, type KafkaLibs } from './libs.ts';
import { LOOPBACK, reservePorts, type PortReservation } from './ports.ts';
import { startWatchdog, trackTemporaryDir, untrackTemporaryDir, type Watchdog } from './reaper.ts';
import type { KafkaCluster, KafkaClusterOptions, ListenerName, ProducedMessage, TopicSpec } from './types.ts';

/** Fixed, well-known test credentials: one user per SASL mechanism so a test can tell them apart. */
export const TEST_USERS: Users = {
  plain: { username: 'alice', password: 'alice-secret' },
  scram256: { username: 'bob', password: 'bob-secret' },
  scram512: { username: 'carol', password: 'carol-secret' },
};

const READY_TIMEOUT_MS = 90_000;
const TOPIC_TIMEOUT_MS = 30_000;

/**
 * A Kafka cluster id: 16 random bytes in URL-safe base64 without padding, like `kafka-storage
 * random-uuid`. Like Kafka, never one starting with '-', which the tool would parse as an option.
 */
function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function listenerPort(node: NodeLayout, listener: ListenerName): number {
  switch (listener) {
    case 'PLAINTEXT':
      return node.ports.plaintext;
    case 'SASL_PLAINTEXT':
      return node.ports.sasl;
    case 'SSL':
      return node.ports.ssl;
    case 'OAUTHBEARER':
      return node.ports.oauthbearer;
  }
}

class EmbeddedKafkaCluster implements KafkaCluster {
  readonly dir: string;
  readonly bootstrap: string;
  readonly saslBootstrap: string;
  readonly oauthBootstrap: string;
  readonly sslBootstrap: string;
  readonly caFile: string;
  readonly users: Users;
  readonly brokerIds: readonly number[];

  readonly #layout: ClusterLayout;
  readonly #libs: KafkaLibs;
  readonly #jvm: JvmOptions;
  readonly #verbose: boolean;
  readonly #temporary: boolean;
  readonly #watchdog: Watchdog;
  readonly #ports: PortReservation;
  readonly #processes = new Map<number, BrokerProcess>();
  #stopping: Promise<void> | undefined;

  constructor(init: {
    dir: string;
    layout: ClusterLayout;
    libs: KafkaLibs;
    jvm: JvmOptions;
    caFile: string;
    verbose: boolean;
    temporary: boolean;
    watchdog: Watchdog;
    ports: PortReservation;
  }) {
    this.dir = init.dir;
    this.#layout = init.layout;
    this.#libs = init.libs;
    this.#jvm = init.jvm;
    this.#verbose = init.verbose;
    this.#temporary = init.temporary;
    this.#watchdog = init.watchdog;
    this.#ports = init.ports;
    this.caFile = init.caFile;
    this.users = init.layout.users;
    this.brokerIds = init.layout.nodes.map((n) => n.id);
    const list = (listener: ListenerName): string =>
      init.layout.nodes.map((n) => `${LOOPBACK}:${listenerPort(n, listener)}`).join(',');
    this.bootstrap = list('PLAINTEXT');
    this.saslBootstrap = list('SASL_PLAINTEXT');
    this.oauthBootstrap = list('OAUTHBEARER');
    this.sslBootstrap = list('SSL');
  }

  #node(id: number): NodeLayout {
    const node = this.#layout.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no broker ${id}; brokers are ${this.brokerIds.join(', ')}`);
    return node;
  }

  brokerBootstrap(id: number, listener: ListenerName = 'PLAINTEXT'): string {
    return `${LOOPBACK}:${listenerPort(this.#node(id), listener)}`;
  }

  logFile(id: number): string {
    return this.#node(id).logFile;
  }

  /** PLAINTEXT addresses of the brokers currently running: the only ones worth asking anything. */
  #runningBootstraps(): string[] {
    const running = this.brokerIds.filter((id) => this.#processes.get(id)?.running === true);
    if (running.length === 0) throw new Error('no broker of this cluster is running');
    return running.map((id) => this.brokerBootstrap(id));
  }

  #checkOpen(): void {
    if (this.#stopping !== undefined) throw new Error('the embedded Kafka cluster has been stopped');
  }

  /** An abort check for waits: a broker that died will never become ready. */
  async #deadBroker(ids: readonly number[]): Promise<string | undefined> {
    for (const id of ids) {
      const broker = this.#processes.get(id);
      if (broker !== undefined && !broker.running) {
        const tail = await broker.logTail();
        return `broker ${id} ${broker.exitDescription ?? 'exited'}; last lines of ${this.logFile(id)}:\n${tail}`;
      }
    }
    return undefined;
  }

  async #launch(ids: readonly number[]): Promise<void> {
    await Promise.all(
      ids.map(async (id) => {
        const node = this.#node(id);
        this.#processes.set(
          id,
          await BrokerProcess.start({
            libs: this.#libs,
            jvm: this.#jvm,
            configFile: node.configFile,
            logFile: node.logFile,
            pidFile: node.pidFile,
            verbose: this.#verbose,
            label: `kafka-${id}`,
          }),
        );
      }),
    );
    const expected = this.brokerIds.filter((id) => this.#processes.get(id)?.running === true);
    try {
      await admin.waitForBrokers(this.#runningBootstraps(), expected, {
        timeoutMs: READY_TIMEOUT_MS,
        what: `embedded Kafka broker(s) ${ids.join(', ')} did not become ready`,
        abort: () => this.#deadBroker(ids),
        intervalMs: 250,
      });
    } catch (error) {
      if (error instanceof Error && !error.message.includes('last lines of')) {
        const tails = await Promise.all(
          ids.map(async (id) => `--- ${this.logFile(id)}:\n${await this.#processes.get(id)?.logTail(30)}`),
        );
        error.message += `\n${tails.join('\n')}`;
      }
      throw error;
    }
  }

  async start(): Promise<void> {
    await this.#launch(this.brokerIds);
  }

  async createTopic(name: string, spec: TopicSpec = {}): Promise<void> {
    this.#checkOpen();
    await admin.createTopic(this.#runningBootstraps(), name, spec, TOPIC_TIMEOUT_MS);
  }

  async deleteTopic(name: string): Promise<void> {
    this.#checkOpen();
    await admin.deleteTopic(this.#runningBootstraps(), name, TOPIC_TIMEOUT_MS);
  }

  async createPartitions(name: string, count: number): Promise<void> {
    this.#checkOpen();
    await admin.createPartitions(this.#runningBootstraps(), name, count, TOPIC_TIMEOUT_MS);
  }

  async produce(topic: string, messages: readonly ProducedMessage[]): Promise<void> {
    this.#checkOpen();
    await produceWithKcat(this.#runningBootstraps().join(','), topic, messages);
  }

  async deleteRecords(topic: string, partition: number, beforeOffset: bigint): Promise<void> {
    this.#checkOpen();
    await admin.deleteRecords(this.#runningBootstraps(), topic, partition, beforeOffset);
  }

  /** Leader broker id of each partition of `topic`, indexed by partition. */
  async partitionLeaders(topic: string): Promise<number[]> {
    this.#checkOpen();
    return admin.partitionLeaders(this.#runningBootstraps(), topic);
  }

  async stopBroker(id: number): Promise<void> {
    this.#checkOpen();
    const broker = this.#processes.get(id);
    if (broker === undefined || !broker.running) return;
    // A clean SIGTERM makes Kafka hand its partition leaderships over before it exits.
    await broker.stop(15_000);
    // With the last broker gone there is nobody left to ask, and nothing to wait for.
    if (!this.brokerIds.some((other) => this.#processes.get(other)?.running === true)) return;
    const others = this.#runningBootstraps();
    // Clients of the survivors should no longer be pointed at the stopped broker.
    await admin.poll(
      async () => {
        for (const bootstrap of others) {
          const { brokers } = await admin.withMetadata(bootstrap);
          if (brokers.has(id)) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, what: `the other brokers still list broker ${id} after it stopped` },
    );
  }

  async killBroker(id: number): Promise<void> {
    this.#checkOpen();
    const broker = this.#processes.get(id);
    if (broker === undefined || !broker.running) return;
    await broker.kill();
  }

  async startBroker(id: number): Promise<void> {
    this.#checkOpen();
    this.#node(id);
    if (this.#processes.get(id)?.running === true) return;
    await this.#launch([id]);
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    // Nodes of a quorum stopping together wait for a controller that is itself going away, so a
    // clean shutdown only ends at the SIGKILL deadline. That wait buys nothing when the data is
    // about to be deleted anyway.
    const grace = this.#temporary && this.brokerIds.length > 1 ? 1500 : 5000;
    await Promise.all([...this.#processes.values()].map((broker) => broker.stop(grace)));
    this.#ports.release();
    this.#watchdog.dismiss();
    if (this.#temporary) {
      await rm(this.dir, { recursive: true, force: true });
      untrackTemporaryDir(this.dir);
    }
  }
}

/** Kept as an alias: tests written against it need nothing beyond `KafkaCluster`. */
export type EmbeddedKafka = KafkaCluster;

/**
 * Starts real Apache Kafka: `brokers` combined broker+controller KRaft nodes as `java` child
 * processes on reserved loopback ports, ready to serve once the returned promise resolves.
 */
export async function startKafka(options: KafkaClusterOptions = {}): Promise<KafkaCluster> {
  const size = options.brokers ?? 1;
  if (size !== 1 && size !== 3) throw new Error(`brokers must be 1 or 3, got ${String(size)}`);
  const verbose = options.verbose ?? process.env['KGATE_KAFKA_VERBOSE'] === '1';
  const libs = await ensureKafkaLibs({ log: (line) => process.stderr.write(`${line}\n`) });

  const temporary = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'kgate-kafka-')));
  if (temporary) trackTemporaryDir(dir);
  else await mkdir(dir, { recursive: true });

  let cluster: EmbeddedKafkaCluster | undefined;
  let watchdog: Watchdog | undefined;
  let reservation: PortReservation | undefined;
  try {
    // Every listener's port is reserved rather than left to the broker to pick (port 0): the
    // controller quorum's ports must be in every node's configuration before any node starts, and
    // a broker restarted by startBroker() must come back where `bootstrap` and the other nodes
    // expect it. The reservation holds the ports for as long as the cluster lives.
    reservation = await reservePorts(size * PORTS_PER_NODE);
    const ports = reservation.ports;
    const nodes: NodeLayout[] = Array.from({ length: size }, (_, index) => {
      const id = index + 1;
      const nodeDir = join(dir, `node-${id}`);
      return {
        id,
        dir: nodeDir,
        dataDir: join(nodeDir, 'data'),
        configFile: join(nodeDir, 'server.properties'),
        logFile: join(nodeDir, 'server.log'),
        pidFile: join(nodeDir, 'broker.pid'),
        ports: nodePorts(ports.slice(index * PORTS_PER_NODE, (index + 1) * PORTS_PER_NODE)),
      };
    });
    watchdog = startWatchdog(
      nodes.map((n) => n.pidFile),
      temporary ? dir : undefined,
    );

    const tlsDir = join(dir, 'tls');
    await mkdir(tlsDir, { recursive: true });
    const ca = await createTestCa(tlsDir);
    const brokerCertificate = await issueCertificate(ca, tlsDir, 'broker');
    const layout: ClusterLayout = {
      nodes,
      keyStoreFile: brokerCertificate.keyStoreFile,
      users: TEST_USERS,
      ...(options.brokerProperties === undefined ? {} : { overrides: options.brokerProperties }),
    };

    const log4jConfigFile = join(dir, 'log4j2.properties');
    await writeFile(log4jConfigFile, LOG4J2_PROPERTIES);
    const jvm: JvmOptions = { heap: size === 1 ? '512m' : '384m', log4jConfigFile };

    const clusterId = newClusterId();
    await Promise.all(
      nodes.map(async (node) => {
        await mkdir(node.dataDir, { recursive: true });
        await writeFile(node.configFile, serverProperties(layout, node));
        // --ignore-formatted keeps the data of a caller-provided directory across runs.
        await formatStorage(
          libs,
          jvm,
          node.configFile,
          clusterId,
          ['--ignore-formatted', ...scramArguments(layout.users)],
          join(node.dir, 'format.log'),
        );
      }),
    );

    cluster = new EmbeddedKafkaCluster({
      dir,
      layout,
      libs,
      jvm,
      caFile: ca.certFile,
      verbose,
      temporary,
      watchdog,
      ports: reservation,
    });
    await cluster.start();
    return cluster;
  } catch (error) {
    if (cluster !== undefined) await cluster.stop().catch(() => undefined);
    else {
      reservation?.release();
      watchdog?.dismiss();
      if (temporary) {
        await rm(dir, { recursive: true, force: true });
        untrackTemporaryDir(dir);
      }
    }
    throw error;
  }
}
