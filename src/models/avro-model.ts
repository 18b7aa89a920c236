import avro from 'avsc';
import { InvalidContentError } from './errors.ts';
import type { CompiledSchema } from './compiled.ts';

function parseJson(bytes: Buffer, label: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new InvalidContentError(label, '', 'not JSON');
  }
}

/** Avro with avsc: JSON values are checked field by field, then written in Avro's binary encoding. */
export function compileAvro(text: string, label: string): CompiledSchema {
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(JSON.parse(text) as avro.Schema);
  } catch (error) {
    throw new Error(`schema ${label} is not an Avro schema: ${(error as Error).message}`, { cause: error });
  }
  const fields = new Set(type instanceof avro.types.RecordType ? type.fields.map((field) => field.name) : []);
  const refuse = (value: unknown): never => {
    let field = '';
    let expected = 'a value of the schema';
    type.isValid(value, {
      errorHook: (path, _value, fieldType) => {
        if (field !== '') return;
        field = `/${path.join('/')}`;
        expected = `must be ${fieldType.typeName}`;
      },
    });
    throw new InvalidContentError(label, field, expected);
  };
  return {
    binary: true,
    fromJson(json) {
      const value = parseJson(json, label);
      if (fields.size > 0 && typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const unknown = Object.keys(value).find((name) => !fields.has(name));
        if (unknown !== undefined)
          throw new InvalidContentError(label, `/${unknown}`, 'not a field of the schema');
      }
      if (!type.isValid(value)) refuse(value);
      return type.toBuffer(value);
    },
    check(value) {
      try {
        type.fromBuffer(value);
      } catch (error) {
        throw new InvalidContentError(label, '', `not Avro of this schema (${(error as Error).message})`);
      }
    },
    toJson(value) {
      // Records decode to plain objects with the schema's field names: JSON as a client wrote it.
      return Buffer.from(JSON.stringify(type.fromBuffer(value)));
    },
  };
}
