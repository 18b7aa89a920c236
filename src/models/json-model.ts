import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { InvalidContentError } from './errors.ts';
import type { CompiledSchema } from './compiled.ts';

/** A JSON Schema: values are JSON text, validated with ajv; the JSON view is the value itself. */
export function compileJson(text: string, label: string): CompiledSchema {
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (error) {
    throw new Error(`schema ${label} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof schema !== 'object' || schema === null)
    throw new Error(`schema ${label} is not a JSON Schema object`);
  let validate: ValidateFunction;
  try {
    // strict off: schemas written for other validators carry keywords ajv does not know.
    validate = new Ajv({ allErrors: false, strict: false }).compile(schema);
  } catch (error) {
    throw new Error(`schema ${label} does not compile: ${(error as Error).message}`, { cause: error });
  }
  const check = (value: unknown): void => {
    if (validate(value)) return;
    const first = validate.errors?.[0];
    const missing = first?.keyword === 'required' ? `/${String(first.params['missingProperty'])}` : '';
    const extra =
      first?.keyword === 'additionalProperties' ? `/${String(first.params['additionalProperty'])}` : '';
    const field = `${first?.instancePath ?? ''}${missing}${extra}`;
    throw new InvalidContentError(label, field, first?.message ?? 'invalid');
  };
  const parse = (bytes: Buffer): unknown => {
    try {
      return JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new InvalidContentError(label, '', 'not JSON');
    }
  };
  return {
    binary: false,
    fromJson(bytes) {
      check(parse(bytes));
      return bytes;
    },
    check(bytes) {
      check(parse(bytes));
    },
    toJson(bytes) {
      const value = parse(bytes);
      check(value);
      return bytes;
    },
  };
}
