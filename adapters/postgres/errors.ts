import { AppendonlyError } from '../../src/index';

/**
 * The schema cannot be used by this store as it is: a table of the same name belongs to
 * something else, or an appendonly schema was written by a newer version. Nothing in it was
 * changed.
 */
export class IncompatibleSchemaError extends AppendonlyError {
  /** Stable code, as every appendonly error has. */
  readonly code = 'INCOMPATIBLE_SCHEMA';
  constructor(
    /** The PostgreSQL schema. */
    readonly schema: string,
    message: string,
  ) {
    super(`schema ${schema}: ${message}`);
  }
}
