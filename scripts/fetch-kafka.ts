// Downloads the Apache Kafka broker jars the integration tests and `kgate demo` run, once per
// Kafka version. A no-op when they are already in .cache/kafka/<version>/libs.
import { ensureKafkaLibs } from '../src/embedded/kafka/libs.ts';

try {
  const libs = await ensureKafkaLibs({ log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`Apache Kafka ${libs.version} jars: ${libs.dir}\n`);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
