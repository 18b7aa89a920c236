/**
 * The Kafka APIs this client speaks, and for each the version range it can encode: the range the
 * protocol library implements, cut below at the oldest version Apache Kafka 4.x still accepts
 * (KIP-896). The version used on a connection is the highest one inside both this range and the
 * broker's ApiVersions answer.
 */
export interface ApiSpec {
  readonly key: number;
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** First version whose request header carries tagged fields (KIP-482). */
  readonly flexibleFrom: number;
}

export const Api = {
  Produce: { key: 0, name: 'Produce', min: 3, max: 11, flexibleFrom: 9 },
  Fetch: { key: 1, name: 'Fetch', min: 4, max: 17, flexibleFrom: 12 },
  ListOffsets: { key: 2, name: 'ListOffsets', min: 1, max: 9, flexibleFrom: 6 },
  Metadata: { key: 3, name: 'Metadata', min: 1, max: 12, flexibleFrom: 9 },
  // v0 means the pre-1.0 flow with raw SASL tokens on the wire; only v1 is spoken.
  SaslHandshake: { key: 17, name: 'SaslHandshake', min: 1, max: 1, flexibleFrom: 99 },
  ApiVersions: { key: 18, name: 'ApiVersions', min: 0, max: 4, flexibleFrom: 3 },
  InitProducerId: { key: 22, name: 'InitProducerId', min: 0, max: 5, flexibleFrom: 2 },
  DescribeConfigs: { key: 32, name: 'DescribeConfigs', min: 1, max: 4, flexibleFrom: 4 },
  SaslAuthenticate: { key: 36, name: 'SaslAuthenticate', min: 0, max: 2, flexibleFrom: 2 },
} as const satisfies Record<string, ApiSpec>;

export type ApiName = keyof typeof Api;

export const API_SPECS: readonly ApiSpec[] = Object.values(Api);

export interface BrokerApiRange {
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
}

/** apiKey -> chosen version, for every API both sides share; absent keys are not usable. */
export function negotiateVersions(broker: readonly BrokerApiRange[]): Map<number, number> {
  const byKey = new Map<number, BrokerApiRange>();
  for (const range of broker) byKey.set(range.apiKey, range);
  const chosen = new Map<number, number>();
  for (const spec of API_SPECS) {
    const range = byKey.get(spec.key);
    if (range === undefined) continue;
    const high = Math.min(spec.max, range.maxVersion);
    const low = Math.max(spec.min, range.minVersion);
    if (high >= low) chosen.set(spec.key, high);
  }
  return chosen;
}

export function isFlexible(spec: ApiSpec, version: number): boolean {
  return version >= spec.flexibleFrom;
}
