export { startKafka, TEST_USERS, type EmbeddedKafka } from './cluster.ts';
export { ensureKafkaLibs, kafkaLibsLocation, kafkaVersion, type KafkaLibs } from './libs.ts';
export { createTestCa, issueCertificate, type IssuedCertificate, type TestCa } from './certificates.ts';
export { unsecuredToken } from './unsecured-token.ts';
export type * from './types.ts';
