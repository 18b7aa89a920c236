import type { ApiSpec } from './api.ts';
import { ApiVersions, type BrokerApiRange } from './api-versions.ts';
import { DescribeConfigs } from './describe-configs.ts';
import { Fetch } from './fetch.ts';
import { InitProducerId } from './init-producer-id.ts';
import { ListOffsets } from './list-offsets.ts';
import { Metadata } from './metadata.ts';
import { Produce } from './produce.ts';
import { SaslAuthenticate } from './sasl-authenticate.ts';
import { SaslHandshake } from './sasl-handshake.ts';

/**
 * The Kafka APIs this client speaks. Each module declares its versions once, in one table that
 * pairs every version with its request encoder and response decoder: the range the protocol library
 * implements, cut below at the oldest version Apache Kafka 4.x still accepts (KIP-896). The version
 * used on a connection is the highest one inside both that range and the broker's ApiVersions
 * answer.
 *
 * Requests are mostly encoded by the protocol library; responses are decoded by kgate, so that an
 * error code the library does not know is reported as that code instead of failing the decode.
 */
export const Api = {
  Produce,
  Fetch,
  ListOffsets,
  Metadata,
  SaslHandshake,
  ApiVersions,
  InitProducerId,
  DescribeConfigs,
  SaslAuthenticate,
} as const;

const SPOKEN: readonly ApiSpec[] = Object.values(Api);

/** apiKey -> chosen version, for every API both sides share; absent keys are not usable. */
export function negotiateVersions(broker: readonly BrokerApiRange[]): Map<number, number> {
  const byKey = new Map<number, BrokerApiRange>();
  for (const range of broker) byKey.set(range.apiKey, range);
  const chosen = new Map<number, number>();
  for (const spec of SPOKEN) {
    const range = byKey.get(spec.key);
    if (range === undefined) continue;
    const high = Math.min(spec.max, range.maxVersion);
    const low = Math.max(spec.min, range.minVersion);
    if (high >= low) chosen.set(spec.key, high);
  }
  return chosen;
}

export type { ApiSpec, RequestBody, VersionCodec, VersionedApi } from './api.ts';
export { bodyBuffers, hasTaggedResponseHeader, isFlexible } from './api.ts';
export type { BrokerApiRange } from './api-versions.ts';
