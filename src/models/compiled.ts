import type { ModelType } from './config.ts';
import { compileAvro } from './avro-model.ts';
import { compileJson } from './json-model.ts';
import { compileProtobuf } from './protobuf-model.ts';

/**
 * One schema compiled for its model. Values are handled without the registry's wire header
 * (wire.ts): the model sees the body only.
 */
export interface CompiledSchema {
  /** Whether the model's own form is binary (avro, protobuf) rather than JSON text. */
  readonly binary: boolean;
  /** JSON text to the model's form; throws InvalidContentError naming the field. */
  fromJson(json: Buffer): Buffer;
  /** Throws InvalidContentError unless `value` is in the model's form and fits the schema. */
  check(value: Buffer): void;
  /** The model's form to JSON text; throws when it does not decode. */
  toJson(value: Buffer): Buffer;
  /** The message indexes a protobuf value carries after the wire header's id. */
  readonly messageIndexes?: readonly number[];
}

export function compileSchema(
  model: ModelType,
  text: string,
  label: string,
  record: string | undefined,
): CompiledSchema {
  switch (model) {
    case 'json':
      return compileJson(text, label);
    case 'avro':
      return compileAvro(text, label);
    case 'protobuf':
      if (record === undefined) throw new Error(`a protobuf model needs a record (schema ${label})`);
      return compileProtobuf(text, label, record);
  }
}
