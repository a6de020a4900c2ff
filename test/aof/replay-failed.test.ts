import 'reflect-metadata';
import {
  createApp,
  defineEvent,
  type ProjectionState,
  On,
  Projection,
  ReplayFailedError,
  SET,
  silentLogger,
} from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { tempDir, writeLog } from './helpers';

const Noted = defineEvent<{ n: number }>('NotedForReplay');

/** A projection that changed since the log was written: it now refuses negative numbers. */
@Projection()
class Strict {
  @On(Noted)
  noted(e: typeof Noted.Event, kv: ProjectionState) {
    if (e.data.n < 0) throw new Error(`negative number ${e.data.n}`);
    kv.set('n', e.data.n);
  }
}

/** Counts SETs per key, and refuses a key that a later version forbids. */
@Projection()
class SetAudit {
  @On(SET)
  audit(e: typeof SET.Event, kv: ProjectionState, meta: { seq: number; time: number }) {
    if (e.data.key === 'forbidden') throw new Error('this key is forbidden now');
    kv.set(`audit:${e.data.key}`, [meta.seq, meta.time, e.data.value]);
  }
}

describe('AofStore: a projection that throws during replay', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('replays a one-SET command to the projections of SET as a SET event, with its seq and time', async () => {
    await writeLog(dir, [
      { seq: 1, time: 0, events: [SET('a', { x: 1 })] },
      { seq: 2, time: 0, events: [SET('b', 2), SET('a', 3)] },
    ]);
    const app = await createApp({
      projections: [SetAudit],
      store: new AofStore({ dir }),
      logger: silentLogger,
    });
    expect(Object.fromEntries(app.state.entries())).toEqual({
      a: 3,
      b: 2,
      'audit:a': [3, 0, 3],
      'audit:b': [2, 0, 2],
    });
    await app.close();
  });

  it('names a one-SET command whose projection throws: SET, its seq, file and byte offset', async () => {
    await writeLog(dir, [
      { seq: 1, time: 0, events: [SET('fine', 1)] },
      { seq: 2, time: 0, events: [SET('forbidden', 2)] },
    ]);
    await expect(
      createApp({ projections: [SetAudit], store: new AofStore({ dir }), logger: silentLogger }),
    ).rejects.toThrow(
      /replaying event SET \(seq 2, appendonly\.aof\.1\.incr\.aof at byte offset \d+\) failed: this key is forbidden now/,
    );
  });

  it('stops the load naming the event, its seq, file and byte offset, with the cause', async () => {
    await writeLog(dir, [
      { seq: 1, time: 0, events: [Noted({ n: 1 })] },
      { seq: 2, time: 0, events: [Noted({ n: -5 })] },
    ]);
    const attempt = createApp({ projections: [Strict], store: new AofStore({ dir }), logger: silentLogger });
    await expect(attempt).rejects.toThrow(ReplayFailedError);
    await expect(
      createApp({ projections: [Strict], store: new AofStore({ dir }), logger: silentLogger }),
    ).rejects.toThrow(
      /replaying event NotedForReplay \(seq 2, appendonly\.aof\.1\.incr\.aof at byte offset \d+\) failed: negative number -5/,
    );
  });
});
