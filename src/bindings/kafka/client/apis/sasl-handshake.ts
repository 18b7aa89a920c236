import { saslHandshakeV1, type Writer } from '@platformatic/kafka';
import { defineApi, libraryVersions } from './api.ts';
import { lenient } from './library-parser.ts';

const API = { key: 17, name: 'SaslHandshake' } as const;

export interface SaslHandshakeResponse {
  readonly errorCode: number;
  /** The mechanisms the broker has enabled. */
  readonly mechanisms: readonly string[];
}

/** The request is the mechanism's name; the answer lists the broker's enabled mechanisms. */
export const SaslHandshake = defineApi({
  ...API,
  // v0 means the pre-1.0 flow with raw SASL tokens on the wire; only v1 is spoken.
  flexibleFrom: 99,
  versions: libraryVersions(1, [saslHandshakeV1], (library, version) => ({
    encode: (mechanism: string): Writer => library.createRequest(mechanism),
    decode: (body): SaslHandshakeResponse => lenient(library.parseResponse, body, API, version),
  })),
});
