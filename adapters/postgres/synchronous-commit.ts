import type { FsyncPolicy } from '../../src/index';
import type { PgClientLike } from './driver';

/** `synchronous_commit` per policy: only `always` waits for the WAL flush at COMMIT. */
export const SYNCHRONOUS_COMMIT: Readonly<Record<FsyncPolicy, 'on' | 'off'>> = {
  always: 'on',
  everysec: 'off',
  no: 'off',
};

/**
 * How to give a pinned session back: null when its value was not its own SET (it came from the
 * server's configuration, the database, the role or the connection's options), which `RESET`
 * gives back; else the value it had SET.
 */
const restores = new WeakMap<PgClientLike, string | null>();

/**
 * Under `always`, SETs `synchronous_commit = on` on the session of the writer's connection, held
 * for the store's lifetime, so that its appends find it there and set nothing themselves (the
 * append checks the session's value in its own statement, see `appendStatements`: this is only
 * what makes the check find it). A session SET outranks the configuration file, so a reload
 * that turns the server's value off leaves the session as it is. `on` only: a session lent to
 * the pool of someone else (a pooler in transaction mode, which the store does not support but
 * cannot detect) is then made more durable, never less; under `everysec` and `no` every append
 * sets `off` for its own transaction. One round trip: the CTE reads the session's value before
 * the SET. Undone by {@link unpinSynchronousCommit}.
 */
export async function pinSynchronousCommit(client: PgClientLike, policy: FsyncPolicy): Promise<void> {
  if (SYNCHRONOUS_COMMIT[policy] !== 'on') return;
  const { rows } = await client.query(
    `WITH was AS MATERIALIZED (SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit')
     SELECT setting, source, set_config('synchronous_commit', 'on', false) FROM was`,
  );
  const was = rows[0] as { setting: string; source: string } | undefined;
  restores.set(client, was?.source === 'session' ? was.setting : null);
}

/**
 * Gives the session its own `synchronous_commit` back before the connection returns to the pool
 * (see {@link pinSynchronousCommit}); nothing when it was not pinned.
 */
export async function unpinSynchronousCommit(client: PgClientLike): Promise<void> {
  if (!restores.has(client)) return;
  const restore = restores.get(client) ?? null;
  restores.delete(client);
  if (restore === null) await client.query('RESET synchronous_commit');
  else await client.query("SELECT set_config('synchronous_commit', $1, false)", [restore]);
}
