import { saslAuthenticateV0, saslAuthenticateV1, saslAuthenticateV2, type Writer } from '@platformatic/kafka';
import { defineApi, libraryVersions } from './api.ts';
import { lenient } from './library-parser.ts';

const API = { key: 36, name: 'SaslAuthenticate' } as const;

export interface SaslAuthenticateResponse {
  readonly errorCode: number;
  readonly errorMessage: string | null | undefined;
  readonly authBytes: Buffer;
}

/** One round trip of the mechanism: the request and the answer carry its auth bytes. */
export const SaslAuthenticate = defineApi({
  ...API,
  flexibleFrom: 2,
  versions: libraryVersions(
    0,
    [saslAuthenticateV0, saslAuthenticateV1, saslAuthenticateV2],
    (library, version) => ({
      encode: (authBytes: Buffer): Writer => library.createRequest(authBytes),
      decode: (body): SaslAuthenticateResponse => lenient(library.parseResponse, body, API, version),
    }),
  ),
});
