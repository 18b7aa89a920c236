import { KgateError } from '../engine/errors.ts';

/** A value that does not fit its schema: the message names the field and the schema. */
export class InvalidContentError extends KgateError {
  readonly field: string;
  readonly schema: string;

  constructor(schema: string, field: string, problem: string) {
    super(
      'KGATE_INVALID_CONTENT',
      `${field === '' ? 'the value' : `field ${field}`} does not fit schema ${schema}: ${problem}`,
    );
    this.field = field;
    this.schema = schema;
  }
}

/** A schema that is needed and could not be had from its catalog (a registry down, say). */
export class SchemaUnavailableError extends KgateError {
  /** The catalog answered that it has no such schema, rather than not answering. */
  readonly missing: boolean;

  constructor(message: string, options?: ErrorOptions & { missing?: boolean }) {
    super('KGATE_SCHEMA_UNAVAILABLE', message, options);
    this.missing = options?.missing ?? false;
  }
}
