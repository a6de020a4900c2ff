/**
 * The append-only-file store of appendonly: Redis 7's multi-part AOF, readable by
 * `redis-check-aof`, with a CRC per command, group commit and non-blocking compaction.
 *
 * @packageDocumentation
 */
export { AofStore } from './aof-store';
export type { FileSystem } from './file-system';
export { nodeFileSystem } from './node-file-system';
export type { AofStoreOptions } from './options';

// Not API: the reader's internals, exported only because cli/aof-walk.ts and cli/aof-check.ts
// (being rebuilt elsewhere) still import them from here. They go once those import
// ./reader, ./resp and ./redis-check directly, as the rest of the CLI and the tests do.
export { type LogFile, type ReadSummary, readLog } from './reader';
export { type RedisCheckResult, redisCheckFile } from './redis-check';
export { ANNOTATION, ERROR, NEED_MORE, RECORD, RespScanner } from './resp';
