import {
  initProducerIdV0,
  initProducerIdV1,
  initProducerIdV2,
  initProducerIdV3,
  initProducerIdV4,
  initProducerIdV5,
  type Writer,
} from '@platformatic/kafka';
import type { Cursor } from '../protocol/reader.ts';
import { defineApi, libraryVersions } from './api.ts';

export interface InitProducerIdResult {
  readonly errorCode: number;
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

export function decodeInitProducerId(c: Cursor, version: number): InitProducerIdResult {
  c.int32();
  const result = { errorCode: c.int16(), producerId: c.int64(), producerEpoch: c.int16() };
  if (version >= 2) c.taggedFields();
  return result;
}

/** An idempotent (not transactional) producer id; every version the protocol library writes. */
export const InitProducerId = defineApi({
  key: 22,
  name: 'InitProducerId',
  flexibleFrom: 2,
  versions: libraryVersions(
    0,
    [
      initProducerIdV0,
      initProducerIdV1,
      initProducerIdV2,
      initProducerIdV3,
      initProducerIdV4,
      initProducerIdV5,
    ],
    (library, version) => ({
      encode: (_request: undefined): Writer => library.createRequest(null, 60_000),
      decode: (body) => decodeInitProducerId(body, version),
    }),
  ),
});
