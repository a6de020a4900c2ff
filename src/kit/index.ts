/**
 * The kit every store is built from, so that they behave alike by construction: group commit,
 * the compaction scheduler (Redis's trigger and back-off), the everysec syncer, the full-write
 * loop and the option helpers. Internal: the stores import it; `src/index.ts` does not export it.
 */
export {
  type CompactionStats,
  CompactionScheduler,
  IDLE_COMPACTION_STATS,
  type AutoRewriteSettings,
  type SchedulerHost,
  type WriteHealth,
} from './compaction-scheduler';
export { type EverysecHost, EverysecSyncer } from './everysec-syncer';
export { GroupCommit, type GroupCommitHost, type Waiting } from './group-commit';
export {
  ConsumerRetention,
  planRetention,
  type RetentionHost,
  type RetentionPlan,
  retainForConsumers,
} from './retention';
export { RewriteTrigger, type TriggerOptions } from './rewrite-trigger';
export { OptionReader, SHARED_DEFAULTS, SHARED_OPTIONS, type SharedStoreOptions } from './store-options';
export { type PositionalWrite, type WriteProgress, writeFully, writeFullySync } from './write-fully';
