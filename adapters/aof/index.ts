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
