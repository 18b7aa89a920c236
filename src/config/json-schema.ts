/**
 * The JSON Schema (draft-07) keywords kgate's config schema uses, typed so that a misspelt keyword
 * in a binding's schema fragment fails to compile rather than being ignored by the validator.
 */

export type JsonValue = string | number | boolean | null | readonly JsonValue[] | JsonMap;

export interface JsonMap {
  readonly [key: string]: JsonValue;
}

export type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array' | 'null';

export type JsonSchema = boolean | JsonSchemaObject;

export interface JsonSchemaObject {
  readonly $schema?: string;
  readonly $ref?: string;
  readonly title?: string;
  readonly description?: string;
  readonly type?: JsonType;
  readonly enum?: readonly JsonValue[];
  readonly const?: JsonValue;
  readonly properties?: { readonly [name: string]: JsonSchema };
  readonly required?: readonly string[];
  readonly additionalProperties?: JsonSchema;
  readonly propertyNames?: JsonSchema;
  readonly patternProperties?: { readonly [pattern: string]: JsonSchema };
  readonly maxProperties?: number;
  readonly minProperties?: number;
  readonly items?: JsonSchema;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly uniqueItems?: boolean;
  readonly minLength?: number;
  readonly pattern?: string;
  /** VS Code's convention for a readable pattern failure; the loader reports it too. */
  readonly patternErrorMessage?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly anyOf?: readonly JsonSchema[];
  readonly oneOf?: readonly JsonSchema[];
  readonly allOf?: readonly JsonSchema[];
  readonly not?: JsonSchema;
  readonly if?: JsonSchema;
  readonly then?: JsonSchema;
  readonly else?: JsonSchema;
  readonly definitions?: { readonly [name: string]: JsonSchema };
}

/** The keys of T that an object of type T must have. */
type RequiredKeys<T> = Extract<{ [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T], string>;

/**
 * The schema of a closed JSON object whose shape is T: it names exactly T's properties (no more, no
 * fewer) and requires only properties T requires. It is how a binding's options schema and the
 * type its options module reads them as are kept from drifting apart; the property schemas
 * themselves are not checked against T's property types.
 */
export interface ObjectSchemaFor<T> extends JsonSchemaObject {
  readonly type: 'object';
  readonly properties: { readonly [K in keyof T]-?: JsonSchema };
  readonly required?: readonly RequiredKeys<T>[];
  readonly additionalProperties: false;
}

/** What one binding kind adds to the config schema. */
export interface BindingSchema {
  /**
   * The schema of one binding of this type and kind: its `options`, `routes` and `exit`. It may
   * refer to the core definitions (`name`, `exit`, `vault`, `bindingTelemetry`, `guarded`, `port`,
   * `stringList`, `stringMap`) and to its own `definitions` as `#/definitions/<name>`.
   */
  readonly binding: JsonSchemaObject;
  /**
   * Definitions `binding` refers to beyond the core ones. Kinds sharing a definition (the kafka
   * kinds' topic settings, say) hand over the same one; two different ones of a name are an error.
   */
  readonly definitions?: { readonly [name: string]: JsonSchema };
}
