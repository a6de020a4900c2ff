import { AppendonlyError } from '../../src/index';

/**
 * The database file cannot be used by this store as it is: it belongs to another program, was
 * written by a newer appendonly, or cannot be put in WAL mode. Nothing in it was changed.
 */
export class IncompatibleDatabaseError extends AppendonlyError {
  readonly code = 'INCOMPATIBLE_DATABASE';
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}
