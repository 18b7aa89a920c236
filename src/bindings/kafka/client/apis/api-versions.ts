import type { Cursor } from '../protocol/reader.ts';
import { defineApi, versionRange } from './api.ts';

/** Who is asking (v3 on); brokers show it in their client metrics. */
export interface ApiVersionsRequest {
  readonly softwareName: string;
  readonly softwareVersion: string;
}

/** One API as the broker supports it. */
export interface BrokerApiRange {
  readonly apiKey: number;
  readonly minVersion: number;
  readonly maxVersion: number;
}

export interface ApiVersionsResponse {
  readonly errorCode: number;
  readonly apiKeys: BrokerApiRange[];
}

function encodeApiVersions(version: number, request: ApiVersionsRequest): Buffer {
  if (version < 3) return Buffer.alloc(0);
  // client_software_name, client_software_version (compact strings), tagged fields
  const name = Buffer.from(request.softwareName);
  const ver = Buffer.from(request.softwareVersion);
  return Buffer.concat([
    Buffer.from([name.length + 1]),
    name,
    Buffer.from([ver.length + 1]),
    ver,
    Buffer.from([0]),
  ]);
}

/** Own decoder: an UNSUPPORTED_VERSION answer comes back in v0 layout whatever version was asked. */
export function decodeApiVersions(cursor: Cursor, version: number): ApiVersionsResponse {
  const errorCode = cursor.int16();
  const compact = version >= 3 && errorCode !== 35;
  const count = cursor.arrayLength(compact);
  const apiKeys: BrokerApiRange[] = [];
  for (let i = 0; i < count; i++) {
    apiKeys.push({ apiKey: cursor.int16(), minVersion: cursor.int16(), maxVersion: cursor.int16() });
    if (compact) cursor.taggedFields();
  }
  return { errorCode, apiKeys };
}

/** Always the first request on a connection, sent before any version is known. */
export const ApiVersions = defineApi({
  key: 18,
  name: 'ApiVersions',
  flexibleFrom: 3,
  // The response header stays v0 at every version, so that any client can read the answer.
  responseHeaderV0: true,
  versions: versionRange(0, 4, (version) => ({
    encode: (request: ApiVersionsRequest): Buffer => encodeApiVersions(version, request),
    decode: (body) => decodeApiVersions(body, version),
  })),
});
