import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as path from 'node:path';
import { StoreLockedError } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { openApp, tempDir } from './helpers';

const { Put } = fixtures;

interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  waitFor(pattern: RegExp): Promise<string>;
  readonly exited: Promise<number | null>;
}

function spawnHolder(dir: string): Child {
  const child = spawn(
    process.execPath,
    ['-r', path.join(__dirname, '../support/register.js'), path.join(__dirname, 'child/holder.ts'), dir],
    { stdio: 'pipe' },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    process: child,
    exited,
    waitFor: async (pattern) => {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const line = out.split('\n').find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      throw new Error(`the child never printed ${pattern}: ${out}`);
    },
  };
}

describe('AofStore: one writer per folder', () => {
  let dir: string;
  let cleanup: () => void;
  const children: Child[] = [];
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.process.kill('SIGKILL');
      await c.exited;
    }
    cleanup();
  });

  it('refuses a second store in the same process at once, and the first keeps working', async () => {
    const first = await openApp({ dir, appendfsync: 'always' });
    await first.app.execute(new Put('a', 1));
    const started = Date.now();
    const err = await openApp({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreLockedError);
    expect((err as Error).message).toBe(
      `${path.join(dir, 'appendonlydir')} is locked by another AofStore in this process (pid ${process.pid}): only one AofStore may write to it at a time`,
    );
    expect(Date.now() - started).toBeLessThan(1000);
    await first.app.execute(new Put('b', 2));
    await first.app.close();
    const again = await openApp({ dir });
    expect(again.app.state.get('b')).toBe(2);
    await again.app.close();
  });

  it('refuses a store while another process holds the folder, naming its pid; gets it at once after that process is SIGKILLed', async () => {
    const child = spawnHolder(dir);
    children.push(child);
    const ready = await child.waitFor(/^ready \d+/);
    const pid = Number(ready.split(' ')[1]);
    await child.waitFor(/^ack 3$/);
    await expect(openApp({ dir })).rejects.toThrow(
      new RegExp(`is locked by process ${pid}: only one AofStore`),
    );
    // The holder was not disturbed.
    await child.waitFor(/^ack 6$/);
    child.process.kill('SIGKILL');
    await child.exited;
    const started = Date.now();
    const { app } = await openApp({ dir });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(app.state.get('child')).toBeGreaterThanOrEqual(6);
    await app.close();
  });

  it('makes a second process fail at once while this one holds the folder', async () => {
    const { app } = await openApp({ dir });
    const child = spawnHolder(dir);
    children.push(child);
    expect(await child.waitFor(/^locked /)).toBe(
      `locked ${path.join(dir, 'appendonlydir')} is locked by process ${process.pid}: only one AofStore may write to it at a time`,
    );
    expect(await child.exited).toBe(3);
    await app.execute(new Put('still', 'mine'));
    await app.close();
  });
});
