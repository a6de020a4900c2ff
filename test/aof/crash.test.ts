import { AofStore } from 'appendonly/adapters/aof';
import { type CrashTarget, crashLoop } from '../support/crash';
import { tempDir } from './helpers';

/**
 * SIGKILL under `always`, with the harness every store shares: after each kill, every command
 * the child saw acknowledged is in the log, and the log loads to the model's state after some
 * prefix of the commands sent (no command half applied). Kills land during compactions too,
 * with a small autoRewriteMinSize so that automatic rewrites run as well.
 */
describe('AofStore always: killed with SIGKILL', () => {
  let cleanup: () => void;
  let dir: string;
  beforeEach(() => {
    const t = tempDir();
    cleanup = t.cleanup;
    dir = t.dir;
  });
  afterEach(() => cleanup());

  const options = (): Record<string, unknown> => ({
    dir,
    appendfsync: 'always',
    autoRewriteMinSize: 64 * 1024,
  });
  const target = (): CrashTarget => ({
    module: 'adapters/aof/index.ts',
    exportName: 'AofStore',
    options: options(),
  });
  const open = () => new AofStore({ dir, appendfsync: 'always' });

  it('loses no acknowledged command, killed at random moments while writing', async () => {
    const rounds = await crashLoop(target(), open, { rounds: 5, maxRunMs: 300 });
    expect(rounds.reduce((n, r) => n + r.acked, 0)).toBeGreaterThan(0);
  });

  it('loses no acknowledged command, killed at random moments while writing and compacting', async () => {
    const rounds = await crashLoop(target(), open, { rounds: 5, maxRunMs: 400, compactEvery: 200 });
    expect(rounds.reduce((n, r) => n + r.acked, 0)).toBeGreaterThan(0);
  });

  it('fsyncOnEventLoop: loses no acknowledged command, killed at random moments while writing and compacting', async () => {
    const onEventLoop = { ...target(), options: { ...options(), fsyncOnEventLoop: true } };
    const rounds = await crashLoop(onEventLoop, open, { rounds: 4, maxRunMs: 300, compactEvery: 200 });
    expect(rounds.reduce((n, r) => n + r.acked, 0)).toBeGreaterThan(0);
  });

  it('everysec: a process crash loses nothing written (acknowledged after the write, the page cache survives)', async () => {
    const everysec = {
      module: 'adapters/aof/index.ts',
      exportName: 'AofStore',
      options: { ...options(), appendfsync: 'everysec' },
    };
    const rounds = await crashLoop(everysec, open, { rounds: 4, maxRunMs: 300, compactEvery: 250 });
    expect(rounds.reduce((n, r) => n + r.acked, 0)).toBeGreaterThan(0);
  });
});
