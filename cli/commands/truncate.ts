import type { LogPoint } from '../../adapters/common/log-point';
import { parseCount, usage } from '../errors';
import { openLog } from '../log-format';

/** Options of `appendonly truncate`: exactly one of them. */
export interface TruncateOptions {
  readonly toSeq?: string;
  readonly toTimestamp?: string;
  /** Do not ask for confirmation. */
  readonly yes?: boolean;
}

/**
 * `appendonly truncate PATH --to-seq N | --to-timestamp T [--yes]`: point-in-time recovery. Keeps every
 * command up to the point and drops the rest, whole commands only, after a backup. By time, the
 * cut is at the first command logged later than T (an AOF log needs `#TS` annotations for it,
 * as redis-check-aof's `--truncate-to-timestamp`); a log without times says so rather than guess.
 */
export async function truncate(pathArg: string, options: TruncateOptions): Promise<number> {
  if ((options.toSeq === undefined) === (options.toTimestamp === undefined)) {
    throw usage('truncate: give exactly one of --to-seq N or --to-timestamp T');
  }
  const point: LogPoint =
    options.toSeq !== undefined
      ? { seq: parseCount(options.toSeq, '--to-seq') }
      : { ts: parseCount(options.toTimestamp!, '--to-timestamp') };
  return openLog(pathArg).truncate(point, options.yes);
}
