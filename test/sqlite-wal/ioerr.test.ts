import * as path from 'node:path';
import { useChildren } from '../support/child';
import { openApp, useDbFile } from './helpers';

/**
 * A real SQLITE_IOERR: the child runs under `ulimit -f`, so the write that takes the WAL past the
 * limit fails with EFBIG. The failing command and every later one are refused with
 * PersistenceError SQLITE_IOERR_WRITE, and a process without the limit finds every acknowledged
 * command and none of the refused ones.
 */
describe('SqliteWalStore always: SQLITE_IOERR from a real failed write', () => {
  let file: string;
  useDbFile((f) => (file = f));
  const spawnWriter = useChildren(path.join(__dirname, 'child/writer.ts'));

  it('refuses what was not durable, keeps everything acknowledged', async () => {
    // given / when: the child writes until a write fails
    const child = spawnWriter([file, 'always', 'until-error'], { maxFileKb: 200 });
    await child.waitFor(/^closed$/);
    // then: the failure and what followed it
    const acked = child.lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
    const failure = child.lines.find((l) => l.startsWith('err '))!;
    expect(acked.length).toBeGreaterThan(10);
    expect(failure).toBe(`err ${acked.length} SQLITE_IOERR_WRITE PersistenceError`);
    expect(child.lines).toContain('later SQLITE_IOERR_WRITE');
    // and: recovery either waits for the fault or (SQLite restarted the WAL after a checkpoint,
    // so the next write fits under the limit) takes writes again
    const recovered = child.lines.find((l) => l.startsWith('recover '));
    const after = child.lines.find((l) => l.startsWith('after '));
    expect(recovered).toMatch(/^recover (ok|SQLITE_IOERR\w*)$/);
    // (a probe cannot promise that the next write fits: if it does not, it is refused again)
    expect(after).toMatch(
      recovered === 'recover ok' ? /^after (ok|SQLITE_IOERR_WRITE)$/ : /^after SQLITE_IOERR_WRITE$/,
    );
    // and: every acknowledged command is in the log, the refused ones are not
    const { app } = await openApp({ file });
    const expected: Record<string, unknown> = Object.fromEntries(
      acked.map((i) => [`k${i}`, 'x'.repeat(1000)]),
    );
    if (after === 'after ok') expected.after = 1;
    expect(Object.fromEntries(app.state.entries())).toEqual(expected);
    await app.close();
  });
});
