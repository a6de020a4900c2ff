/**
 * The PostgreSQL store: `new PostgresStore({ connectionString, log, appendfsync })`, one log
 * shared by any number of instances on one database (node-postgres, an optional peer dependency).
 *
 * @packageDocumentation
 */
export type {
  PgArrayQuery,
  PgClientLike,
  PgNamedQuery,
  PgNotification,
  PgPoolLike,
  PgResult,
} from './driver';
export { IncompatibleSchemaError } from './errors';
export type { PostgresStoreOptions } from './options';
export { FORMAT, SCHEMA_VERSION } from './schema';
export { type PostgresStats, PostgresStore } from './store';
