import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { type CrashTarget, crashLoop } from '../support/crash';
import { useDbFile } from './helpers';

/**
 * SIGKILL under `always`, with the harness every store shares: after each kill, every command
 * the child saw acknowledged is in the log, and the log loads to the model's state after some
 * prefix of the commands sent (no command half applied). Kills land during compactions too.
 */
describe('SqliteWalStore always: killed with SIGKILL', () => {
  let file: string;
  useDbFile((f) => (file = f));

  const target = (): CrashTarget => ({
    module: 'adapters/sqlite-wal/index.ts',
    exportName: 'SqliteWalStore',
    options: { file, appendfsync: 'always' },
  });
  const open = () => new SqliteWalStore({ file, appendfsync: 'always' });

  it('loses no acknowledged command, killed at random moments while writing', async () => {
    const rounds = await crashLoop(target(), open, { rounds: 4, maxRunMs: 300 });
    expect(rounds.reduce((n, r) => n + r.acked, 0)).toBeGreaterThan(0);
  });

  it('loses no acknowledged command, killed at random moments while writing and compacting', async () => {
    const rounds = await crashLoop(target(), open, { rounds: 4, maxRunMs: 400, compactEvery: 300 });
    expect(rounds.reduce((n, r) => n + r.acked, 0)).toBeGreaterThan(0);
  });
});
