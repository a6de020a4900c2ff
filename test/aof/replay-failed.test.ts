import 'reflect-metadata';
import { createApp, defineEvent, KeyValueState, On, Projection, ReplayFailedError, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { tempDir } from './helpers';

const Noted = defineEvent<{ n: number }>('NotedForReplay');

/** A projection that changed since the log was written: it now refuses negative numbers. */
@Projection()
class Strict {
  @On(Noted)
  noted(e: typeof Noted.Event, kv: KeyValueState) {
    if (e.data.n < 0) throw new Error(`negative number ${e.data.n}`);
    kv.set('n', e.data.n);
  }
}

describe('AofStore: a projection that throws during replay', () => {
  it('stops the load naming the event, its seq, file and byte offset, with the cause', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const store = new AofStore({ dir, appendfsync: 'always' });
      const kv = new KeyValueState();
      await store.open({ snapshots: { takeSnapshot: () => kv.takeSnapshot(0) }, logger: silentLogger, clock: { now: Date.now } });
      await store.append({ seq: 1, time: 0, events: [Noted({ n: 1 })] });
      await store.append({ seq: 2, time: 0, events: [Noted({ n: -5 })] });
      await store.close();
      const attempt = createApp({ projections: [Strict], store: new AofStore({ dir }), logger: silentLogger });
      await expect(attempt).rejects.toThrow(ReplayFailedError);
      await expect(createApp({ projections: [Strict], store: new AofStore({ dir }), logger: silentLogger })).rejects.toThrow(
        /replaying event NotedForReplay \(seq 2, appendonly\.aof\.1\.incr\.aof at byte offset \d+\) failed: negative number -5/,
      );
    } finally {
      cleanup();
    }
  });
});
