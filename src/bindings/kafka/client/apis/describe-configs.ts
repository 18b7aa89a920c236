import {
  describeConfigsV1,
  describeConfigsV2,
  describeConfigsV3,
  describeConfigsV4,
  type Writer,
} from '@platformatic/kafka';
import type { Cursor } from '../protocol/reader.ts';
import { defineApi, libraryVersions } from './api.ts';

const RESOURCE_TOPIC = 2;

export interface DescribeConfigsResult {
  readonly errorCode: number;
  readonly errorMessage: string | null;
  readonly name: string;
  readonly configs: Record<string, string | null>;
}

export function decodeDescribeConfigs(c: Cursor, version: number): DescribeConfigsResult[] {
  const flexible = version >= 4;
  c.int32();
  const out: DescribeConfigsResult[] = [];
  const count = c.arrayLength(flexible);
  for (let r = 0; r < count; r++) {
    const errorCode = c.int16();
    const errorMessage = c.nullableString(flexible);
    c.int8(); // resource_type
    const name = c.string(flexible);
    const configs: Record<string, string | null> = {};
    const configCount = c.arrayLength(flexible);
    for (let i = 0; i < configCount; i++) {
      const key = c.string(flexible);
      configs[key] = c.nullableString(flexible);
      c.int8(); // read_only
      c.int8(); // config_source
      c.int8(); // is_sensitive
      const synonyms = c.arrayLength(flexible);
      for (let s = 0; s < synonyms; s++) {
        c.string(flexible);
        c.nullableString(flexible);
        c.int8();
        if (flexible) c.taggedFields();
      }
      if (version >= 3) {
        c.int8(); // config_type
        c.nullableString(flexible); // documentation
      }
      if (flexible) c.taggedFields();
    }
    if (flexible) c.taggedFields();
    out.push({ errorCode, errorMessage, name, configs });
  }
  if (flexible) c.taggedFields();
  return out;
}

/**
 * DescribeConfigs of one topic (the request is the topic's name), every key. v1 (the oldest Kafka
 * 4.x accepts, KIP-896) up to the newest the protocol library writes.
 */
export const DescribeConfigs = defineApi({
  key: 32,
  name: 'DescribeConfigs',
  flexibleFrom: 4,
  versions: libraryVersions(
    1,
    [describeConfigsV1, describeConfigsV2, describeConfigsV3, describeConfigsV4],
    (library, version) => ({
      encode: (topic: string): Writer =>
        library.createRequest(
          [{ resourceType: RESOURCE_TOPIC, resourceName: topic, configurationKeys: null }],
          false,
          false,
        ),
      decode: (body) => decodeDescribeConfigs(body, version),
    }),
  ),
});
