import { usage } from '../errors';
import { openLog, type StripOptions } from '../log-format';

export type { StripOptions };

/**
 * `appendonly strip PATH --type TYPE [--last] [--from-history] [--yes]`: what a Redis user does by hand
 * to undo an accidental FLUSHALL (open appendonly.aof, delete the FLUSHALL, restart), on every
 * file of commands, keeping the checksums right, after a backup. The events after a removed one
 * move down one sequence number, as a replay numbers them. A log whose format numbers every
 * event for good (SQLite) refuses, pointing to `convert`.
 */
export function strip(pathArg: string, options: StripOptions): Promise<number> {
  const type = options.type;
  if (type === '' || type === 'MULTI' || type === 'EXEC')
    throw usage(`strip --type: ${JSON.stringify(type)} is not an event type`);
  return openLog(pathArg).strip(options);
}
