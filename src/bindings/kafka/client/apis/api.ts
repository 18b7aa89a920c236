import type { Writer } from '@platformatic/kafka';
import type { Cursor } from '../protocol/reader.ts';

/** A request body: the protocol library's writer, or buffers handed to the socket as they are. */
export type RequestBody = Writer | Buffer | readonly Buffer[];

export function bodyBuffers(body: RequestBody): readonly Buffer[] {
  return Buffer.isBuffer(body) ? [body] : Array.isArray(body) ? body : (body as Writer).buffers;
}

/** How kgate writes one version of an API's request and reads its response. */
export interface VersionCodec<Request, Response> {
  encode(request: Request): RequestBody;
  /** Reads the response body (the header is already read); throws on bytes that do not decode. */
  decode(body: Cursor): Response;
}

/** What version negotiation and the request and response headers need to know of an API. */
export interface ApiSpec {
  readonly key: number;
  readonly name: string;
  /** Oldest version kgate speaks. */
  readonly min: number;
  /** Newest version kgate speaks. */
  readonly max: number;
  /** First version whose headers carry tagged fields (KIP-482). */
  readonly flexibleFrom: number;
  /** The response header stays v0 at every version, tagged fields or not (ApiVersions). */
  readonly responseHeaderV0: boolean;
}

/** One Kafka API: the versions kgate speaks, each with its codec. */
export interface VersionedApi<Request, Response> extends ApiSpec {
  /** The codec of `version`; throws outside min..max. */
  codec(version: number): VersionCodec<Request, Response>;
}

/** Consecutive versions from `first` on, each with its codec. */
export interface VersionTable<Request, Response> {
  readonly first: number;
  readonly codecs: readonly VersionCodec<Request, Response>[];
}

/**
 * The versions the protocol library writes requests for, one writer per version from `first` on;
 * `codec` pairs each writer with kgate's reading of that version's response.
 */
export function libraryVersions<LibraryVersion, Request, Response>(
  first: number,
  library: readonly LibraryVersion[],
  codec: (library: LibraryVersion, version: number) => VersionCodec<Request, Response>,
): VersionTable<Request, Response> {
  return { first, codecs: library.map((entry, index) => codec(entry, first + index)) };
}

/** Versions `first`..`last`, for APIs whose requests kgate writes itself. */
export function versionRange<Request, Response>(
  first: number,
  last: number,
  codec: (version: number) => VersionCodec<Request, Response>,
): VersionTable<Request, Response> {
  const codecs: VersionCodec<Request, Response>[] = [];
  for (let version = first; version <= last; version++) codecs.push(codec(version));
  return { first, codecs };
}

export interface ApiDefinition<Request, Response> {
  readonly key: number;
  readonly name: string;
  readonly flexibleFrom: number;
  readonly responseHeaderV0?: boolean;
  readonly versions: VersionTable<Request, Response>;
}

/** An API whose supported range is read off its version table, so it is written down once. */
export function defineApi<Request, Response>(
  definition: ApiDefinition<Request, Response>,
): VersionedApi<Request, Response> {
  const { first, codecs } = definition.versions;
  if (codecs.length === 0) throw new Error(`${definition.name} has no versions`);
  return {
    key: definition.key,
    name: definition.name,
    min: first,
    max: first + codecs.length - 1,
    flexibleFrom: definition.flexibleFrom,
    responseHeaderV0: definition.responseHeaderV0 ?? false,
    codec(version) {
      const codec = codecs[version - first];
      if (codec === undefined) throw new Error(`${definition.name} v${version} is not implemented`);
      return codec;
    },
  };
}

export function isFlexible(spec: ApiSpec, version: number): boolean {
  return version >= spec.flexibleFrom;
}

export function hasTaggedResponseHeader(spec: ApiSpec, version: number): boolean {
  return isFlexible(spec, version) && !spec.responseHeaderV0;
}
