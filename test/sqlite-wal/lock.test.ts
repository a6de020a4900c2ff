import { StoreLockedError } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import * as path from 'node:path';
import { useChildren } from '../support/child';
import { openApp, state, useDbFile } from './helpers';

const { Put } = fixtures;

describe('SqliteWalStore: one writer', () => {
  let file: string;
  useDbFile((f) => (file = f));
  const spawnWriter = useChildren(path.join(__dirname, 'child/writer.ts'));

  it('refuses a second store in the same process at once, and the first keeps working', async () => {
    // given
    const first = await openApp({ file, appendfsync: 'always' });
    await first.app.execute(new Put('a', 1));
    // when
    const started = Date.now();
    await expect(openApp({ file })).rejects.toThrow(StoreLockedError);
    await expect(openApp({ file })).rejects.toThrow(/app\.db is locked by another writer/);
    // then: refused without waiting out a busy timeout, and the holder still writes and reads
    expect(Date.now() - started).toBeLessThan(1000);
    await first.app.execute(new Put('b', 2));
    await first.app.close();
    const again = await openApp({ file });
    expect(state(again.app)).toEqual({ a: 1, b: 2 });
    await again.app.close();
  });

  it('refuses a second writer in another process while this one holds the file', async () => {
    // given
    const { app } = await openApp({ file, appendfsync: 'always' });
    await app.execute(new Put('a', 1));
    // when
    const child = spawnWriter([file, 'always', 'try']);
    // then
    expect(await child.waitFor(/^(refused|opened)/)).toMatch(
      /^refused STORE_LOCKED .*locked by another writer/,
    );
    await app.execute(new Put('b', 2));
    await app.close();
  });

  it('refuses this process while a child holds the file, and takes the lock at once after the child is SIGKILLed', async () => {
    // given: a child that wrote and holds the store
    const child = spawnWriter([file, 'always', 'write', '20']);
    await child.waitFor(/^done$/);
    await expect(openApp({ file })).rejects.toThrow(StoreLockedError);
    // when
    child.process.kill('SIGKILL');
    await child.exited;
    // then: the kernel dropped the lock with the process; no stale lock, no retry needed
    const { app } = await openApp({ file, appendfsync: 'always' });
    expect(app.state.size).toBe(20);
    await app.execute(new Put('after', true));
    await app.close();
  });
});
