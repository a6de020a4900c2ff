import { type CheckOptions, openLog } from '../log-format';

export type { CheckOptions };

/**
 * `appendonly check PATH [--fix] [--yes]`: per file, valid or where the damage starts (an AOF
 * log with redis-check-aof's `AOF analyzed:` lines); `--fix` cuts a damaged tail back to the
 * last good record, after a backup. Returns the exit code (0 valid, 1 invalid).
 */
export function check(pathArg: string, options: CheckOptions): Promise<number> {
  return openLog(pathArg).check(options);
}
