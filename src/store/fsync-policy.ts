import { ConfigError } from '../errors';

/**
 * When an appended command counts as durable, as Redis's `appendfsync`:
 * - `always`: written and fsynced (group commit: commands in flight share one write and one fsync);
 * - `everysec`: written at once, fsynced in the background about every second;
 * - `no`: written at once; the OS decides when it reaches the disk.
 */
export type FsyncPolicy = 'always' | 'everysec' | 'no';

/** The policies, in the order Redis documents them. */
export const FSYNC_POLICIES: readonly FsyncPolicy[] = ['always', 'everysec', 'no'];

/** Returns `value` as a policy, or throws a {@link ConfigError} naming the option. */
export function parseFsyncPolicy(value: unknown, option = 'appendfsync'): FsyncPolicy {
  if (typeof value === 'string' && (FSYNC_POLICIES as readonly string[]).includes(value)) {
    return value as FsyncPolicy;
  }
  throw new ConfigError(
    `${option} must be one of ${FSYNC_POLICIES.join(', ')}; got ${JSON.stringify(value)}`,
  );
}
