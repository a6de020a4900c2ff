/**
 * The append-only-file store of appendonly: Redis 7's multi-part AOF, readable by
 * `redis-check-aof`, with a CRC per command, group commit and non-blocking compaction.
 *
 * @packageDocumentation
 */
export { AofStore } from './aof-store';
export { formatManifest, type Manifest, type ManifestEntry, parseManifest } from './manifest';
export type { FileSystem } from './file-system';
export { nodeFileSystem } from './node-file-system';
export type { AofStoreOptions } from './options';
export { type LogFile, type ReadOptions, type ReadSummary, readLog } from './reader';
export { encodeEvent, encodeGroup } from './record-codec';
export { ANNOTATION, ERROR, NEED_MORE, RECORD, RespEncoder, RespScanner, type ScanResult } from './resp';
export {
  type RedisCheckFileResult,
  type RedisCheckResult,
  redisCheckFile,
  redisCheckManifest,
} from './redis-check';
