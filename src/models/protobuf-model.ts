import protobuf from 'protobufjs';
import { InvalidContentError } from './errors.ts';
import type { CompiledSchema } from './compiled.ts';

// The wire type each scalar field type is written with; messages, strings and bytes are 2.
const WIRE_TYPES: Readonly<Record<string, number>> = {
  double: 1,
  fixed64: 1,
  sfixed64: 1,
  float: 5,
  fixed32: 5,
  sfixed32: 5,
  int32: 0,
  int64: 0,
  uint32: 0,
  uint64: 0,
  sint32: 0,
  sint64: 0,
  bool: 0,
};

function wireTypeOf(field: protobuf.Field): number {
  if (field.repeated && field.resolvedType === null && WIRE_TYPES[field.type] !== undefined) {
    // A packed repeated scalar comes length-delimited; an unpacked one with its own wire type.
    return -1;
  }
  if (field.resolvedType instanceof protobuf.Enum) return 0;
  return WIRE_TYPES[field.type] ?? 2;
}

/**
 * Checks the binary encoding field by field: every field number must be one the type declares, with
 * the wire type its declared type is written with. protobufjs alone decodes a value written for
 * another schema (a field of another type, a field it does not know) without complaint.
 */
function checkWire(type: protobuf.Type, bytes: Uint8Array, label: string, path: string, depth: number): void {
  if (depth > 32) throw new InvalidContentError(label, path, 'nested too deeply');
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const number = tag >>> 3;
    const wireType = tag & 7;
    const field = type.fieldsById[number];
    if (field === undefined)
      throw new InvalidContentError(label, `${path}/#${number}`, 'not a field of the schema');
    const expected = wireTypeOf(field);
    const at = `${path}/${field.name}`;
    if (expected === -1) {
      if (wireType !== 2 && wireType !== WIRE_TYPES[field.type])
        throw new InvalidContentError(label, at, `must be ${field.type}`);
    } else if (wireType !== expected) {
      throw new InvalidContentError(label, at, `must be ${field.type}`);
    }
    if (wireType === 2 && field.resolvedType instanceof protobuf.Type) {
      checkWire(field.resolvedType, reader.bytes(), label, at, depth + 1);
    } else if (wireType === 2 && field.type === 'string') {
      const text = reader.bytes();
      if (!isUtf8(text)) throw new InvalidContentError(label, at, 'must be UTF-8 text');
    } else {
      reader.skipType(wireType);
    }
  }
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** The path of `type` among the messages of its file, as the wire header's message indexes say it. */
function indexesOf(type: protobuf.Type): number[] {
  const path: number[] = [];
  let at: protobuf.ReflectionObject = type;
  while (at.parent !== null && at instanceof protobuf.Type) {
    const parent: protobuf.Namespace = at.parent;
    const siblings = parent.nestedArray.filter((n) => n instanceof protobuf.Type);
    path.unshift(siblings.indexOf(at));
    at = parent;
  }
  return path;
}

/** Protobuf with protobufjs: `.proto` text, one message type (`record`) of it. */
export function compileProtobuf(text: string, label: string, record: string): CompiledSchema {
  let type: protobuf.Type;
  try {
    const root = protobuf.parse(text, { keepCase: true }).root;
    type = root.lookupType(record);
    root.resolveAll();
  } catch (error) {
    throw new Error(`schema ${label} has no protobuf message ${record}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const check = (value: Uint8Array): void => {
    try {
      checkWire(type, value, label, '', 0);
    } catch (error) {
      if (error instanceof InvalidContentError) throw error;
      throw new InvalidContentError(
        label,
        '',
        `not protobuf of message ${record} (${(error as Error).message})`,
      );
    }
  };
  return {
    binary: true,
    messageIndexes: indexesOf(type),
    fromJson(json) {
      let value: unknown;
      try {
        value = JSON.parse(json.toString('utf8'));
      } catch {
        throw new InvalidContentError(label, '', 'not JSON');
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new InvalidContentError(label, '', `must be an object of message ${record}`);
      const object = value as Record<string, unknown>;
      const unknown = Object.keys(object).find((name) => type.fields[name] === undefined);
      if (unknown !== undefined)
        throw new InvalidContentError(label, `/${unknown}`, 'not a field of the schema');
      const problem = type.verify(object);
      if (problem !== null) {
        const field = /^([A-Za-z0-9_.]+)/.exec(problem)?.[1] ?? '';
        throw new InvalidContentError(label, field === '' ? '' : `/${field.replaceAll('.', '/')}`, problem);
      }
      return Buffer.from(type.encode(type.fromObject(object)).finish());
    },
    check,
    toJson(value) {
      check(value);
      const message = type.decode(value);
      return Buffer.from(
        JSON.stringify(type.toObject(message, { longs: String, enums: String, bytes: String })),
      );
    },
  };
}
