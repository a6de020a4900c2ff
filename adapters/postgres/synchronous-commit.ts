import type { FsyncPolicy } from '../../src/index';
import type { PgClientLike } from './driver';

/** `synchronous_commit` per policy: only `always` waits for the WAL flush at COMMIT. */
export const SYNCHRONOUS_COMMIT: Readonly<Record<FsyncPolicy, 'on' | 'off'>> = {
  always: 'on',
  everysec: 'off',
  no: 'off',
};

/**
 * What the writer's session was set to, and how to put it back: `restore` is null when the
 * value came from elsewhere than a SET of the session (the server's configuration, the role,
 * the database, the connection's options), which `RESET` gives back and lets follow a reload.
 */
interface Pinned {
  readonly value: 'on' | 'off';
  readonly restore: string | null;
}

const pinned = new WeakMap<PgClientLike, Pinned>();

/**
 * Sets `synchronous_commit` for the session of the writer's connection, held for the store's
 * lifetime, to what `policy` asks, so that its appends need not set it in their own
 * transactions. `set_config(…, true)` in every append (see `appendStatements`) made a one-row
 * append 6–9 % slower (bench scratch on 2 cores, 20 ms slices shuffled: 1,864 and 1,948 against
 * 2,027 and 2,071 per second). A session SET outranks the configuration file: a reload that
 * turns `synchronous_commit` off for the server leaves this session as set. Undone by
 * {@link unpinSynchronousCommit} before the connection goes back to a pool the user owns.
 */
export async function pinSynchronousCommit(client: PgClientLike, policy: FsyncPolicy): Promise<void> {
  const value = SYNCHRONOUS_COMMIT[policy];
  const { rows } = await client.query(
    "SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'",
  );
  const row = rows[0] as { setting: string; source: string } | undefined;
  await client.query("SELECT set_config('synchronous_commit', $1, false)", [value]);
  pinned.set(client, { value, restore: row?.source === 'session' ? row.setting : null });
}

/** Gives the session its own `synchronous_commit` back (see {@link pinSynchronousCommit}). */
export async function unpinSynchronousCommit(client: PgClientLike): Promise<void> {
  const pin = pinned.get(client);
  if (pin === undefined) return;
  pinned.delete(client);
  if (pin.restore === null) await client.query('RESET synchronous_commit');
  else await client.query("SELECT set_config('synchronous_commit', $1, false)", [pin.restore]);
}

/**
 * True when a transaction on `client` commits as `policy` asks without setting it: the session
 * was pinned to that value. A connection the store did not pin (a tool's, a benchmark's fill)
 * never is.
 */
export function sessionCommitsAs(client: PgClientLike, policy: FsyncPolicy): boolean {
  return pinned.get(client)?.value === SYNCHRONOUS_COMMIT[policy];
}
