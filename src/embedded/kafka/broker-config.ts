import { LOOPBACK } from './ports.ts';
import type { Credentials } from './types.ts';

/** The listeners every node opens, each on its own loopback port. */
export interface NodePorts {
  readonly plaintext: number;
  readonly sasl: number;
  readonly ssl: number;
  /** SASL_PLAINTEXT with OAUTHBEARER only, tokens checked by Kafka's unsecured validator. */
  readonly oauthbearer: number;
  /** KRaft quorum traffic. */
  readonly controller: number;
  /** Replication between brokers; kept apart so client-facing listeners can change freely. */
  readonly internal: number;
}

export const PORTS_PER_NODE = 6;

export function nodePorts(ports: readonly number[]): NodePorts {
  const [plaintext, sasl, ssl, oauthbearer, controller, internal] = ports;
  if (
    plaintext === undefined ||
    sasl === undefined ||
    ssl === undefined ||
    oauthbearer === undefined ||
    controller === undefined ||
    internal === undefined
  ) {
    throw new Error(`need ${PORTS_PER_NODE} ports per node, got ${ports.length}`);
  }
  return { plaintext, sasl, ssl, oauthbearer, controller, internal };
}

export interface NodeLayout {
  readonly id: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly configFile: string;
  readonly logFile: string;
  /** Holds the broker's PID while it runs, for the out-of-process watchdog. */
  readonly pidFile: string;
  readonly ports: NodePorts;
}

export interface Users {
  readonly plain: Credentials;
  readonly scram256: Credentials;
  readonly scram512: Credentials;
}

export interface ClusterLayout {
  readonly nodes: readonly NodeLayout[];
  /** PEM key store (key, certificate, CA) shared by all nodes: they all listen on 127.0.0.1. */
  readonly keyStoreFile: string;
  /** Set over the defaults below. */
  readonly overrides?: Readonly<Record<string, string | number | boolean>>;
  readonly users: Users;
}

/** JAAS values are double-quoted strings; test credentials never need escaping, so refuse rather than guess. */
function jaasValue(value: string): string {
  if (!/^[\w.@+-]+$/.test(value)) throw new Error(`credential ${JSON.stringify(value)} is not JAAS-safe`);
  return `"${value}"`;
}

export function serverProperties(cluster: ClusterLayout, node: NodeLayout): string {
  const size = cluster.nodes.length;
  const replication = Math.min(size, 3);
  const voters = cluster.nodes.map((n) => `${n.id}@${LOOPBACK}:${n.ports.controller}`).join(',');
  const { plaintext, sasl, ssl, oauthbearer, controller, internal } = node.ports;
  const { plain } = cluster.users;
  const properties: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': node.id,
    'controller.quorum.voters': voters,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'INTERNAL',
    listeners: [
      `PLAINTEXT://${LOOPBACK}:${plaintext}`,
      `SASL_PLAINTEXT://${LOOPBACK}:${sasl}`,
      `SSL://${LOOPBACK}:${ssl}`,
      `OAUTHBEARER://${LOOPBACK}:${oauthbearer}`,
      `CONTROLLER://${LOOPBACK}:${controller}`,
      `INTERNAL://${LOOPBACK}:${internal}`,
    ].join(','),
    'advertised.listeners': [
      `PLAINTEXT://${LOOPBACK}:${plaintext}`,
      `SASL_PLAINTEXT://${LOOPBACK}:${sasl}`,
      `SSL://${LOOPBACK}:${ssl}`,
      `OAUTHBEARER://${LOOPBACK}:${oauthbearer}`,
      `INTERNAL://${LOOPBACK}:${internal}`,
    ].join(','),
    'listener.security.protocol.map':
      'PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,OAUTHBEARER:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT',
    'log.dirs': node.dataDir,

    // Topics exist only when a test creates them: a typo must fail, not silently create a topic.
    'auto.create.topics.enable': false,
    'num.partitions': 1,
    'default.replication.factor': replication,
    'min.insync.replicas': 1,
    // Internal topics sized for the cluster at hand; the defaults (RF 3, 50 partitions) would
    // either not be creatable on one node or cost seconds on first use.
    'offsets.topic.replication.factor': replication,
    'offsets.topic.num.partitions': 5,
    'transaction.state.log.replication.factor': replication,
    'transaction.state.log.min.isr': size > 1 ? 2 : 1,
    'transaction.state.log.num.partitions': 5,
    'share.coordinator.state.topic.replication.factor': replication,
    'share.coordinator.state.topic.min.isr': size > 1 ? 2 : 1,
    // Tests join groups and expect assignment right away, not after the default 3 s.
    'group.initial.rebalance.delay.ms': 0,
    // A restarted node cannot register again until its previous incarnation's session has
    // expired (9 s by default), and a killed node's leaderships move only then: keep it short.
    'broker.session.timeout.ms': 4000,
    'broker.heartbeat.interval.ms': 500,

    'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
    'listener.name.sasl_plaintext.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required user_${plain.username}=${jaasValue(plain.password)};`,
    // SCRAM users live in the cluster metadata, written when the storage is formatted.
    'listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config':
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config':
      'org.apache.kafka.common.security.scram.ScramLoginModule required;',
    // Kafka's unsecured validator: it accepts an unsigned token (`alg: none`) that has a subject and
    // has not expired, which is enough to test a client's side of OAUTHBEARER without an issuer.
    'listener.name.oauthbearer.sasl.enabled.mechanisms': 'OAUTHBEARER',
    'listener.name.oauthbearer.oauthbearer.sasl.jaas.config':
      'org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="broker";',

    // PEM rather than JKS: no keytool step, and the same files serve Node's TLS as well.
    'ssl.keystore.type': 'PEM',
    'ssl.keystore.location': cluster.keyStoreFile,
    'ssl.client.auth': 'none',

    // Fewer threads than a production broker: less memory and faster start, plenty for tests.
    'num.network.threads': 2,
    'num.io.threads': 4,
    'background.threads': 4,
    'num.recovery.threads.per.data.dir': 1,
    'log.cleaner.threads': 1,
    ...cluster.overrides,
  };
  return (
    Object.entries(properties)
      .map(([key, value]) => `${key}=${String(value).replaceAll('\\', '\\\\')}`)
      .join('\n') + '\n'
  );
}

/** Plain-text lines on stdout, which the launcher redirects into the node's log file. */
export const LOG4J2_PROPERTIES = `status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
`;

/**
 * `--add-scram` arguments for the storage tool (the quoted form of the Kafka documentation).
 * Note: librdkafka before 2.6.1, which includes Debian 12's kcat (librdkafka 2.0.2), cannot do
 * SCRAM with Kafka 4.x brokers at all (a nonce bug Kafka 4 no longer tolerates); use PLAIN or
 * another client for SCRAM.
 */
export function scramArguments(users: Users): string[] {
  return [
    '--add-scram',
    `SCRAM-SHA-256=[name="${users.scram256.username}",password="${users.scram256.password}"]`,
    '--add-scram',
    `SCRAM-SHA-512=[name="${users.scram512.username}",password="${users.scram512.password}"]`,
  ];
}
