import 'reflect-metadata';
import {
  createApp,
  type EventGroup,
  MemoryStore,
  PersistenceError,
  SET,
  silentLogger,
  CommandHandler,
} from 'appendonly';

/**
 * A MemoryStore whose disk can "fill up": while `full`, appends reject with ENOSPC and recover()
 * fails, as a real store does until space is freed. Fault injection, not a stand-in: the log
 * kept is the MemoryStore's real one.
 */
class FillableStore extends MemoryStore {
  full = false;
  override append(group: EventGroup): Promise<void> {
    if (this.full) {
      return Promise.reject(
        PersistenceError.from(
          'write appendonly.aof',
          Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }),
        ),
      );
    }
    return super.append(group);
  }
  async recover(): Promise<void> {
    if (this.full) throw new PersistenceError('still full', 'ENOSPC');
  }
}

class Put {
  constructor(
    readonly key: string,
    readonly value: number,
  ) {}
}
@CommandHandler(Put)
class PutHandler {
  execute(c: Put) {
    return [SET(c.key, c.value)];
  }
}

describe('write failures (write failures)', () => {
  it('rejects what is not durable, refuses commands while the fault lasts, reloads, then takes commands again', async () => {
    // given an app with one acknowledged command
    const store = new FillableStore();
    const app = await createApp({ handlers: [PutHandler], store, logger: silentLogger });
    await app.execute(new Put('acked', 1));
    // when the disk fills up
    store.full = true;
    const failed = app.execute(new Put('lost', 2));
    // then the command rejects with the system's code, and new commands are refused
    await expect(failed).rejects.toMatchObject({ name: 'PersistenceError', code: 'ENOSPC' });
    expect(app.status).toBe('failed');
    await expect(app.execute(new Put('refused', 3))).rejects.toThrow(PersistenceError);
    expect(app.stats().status).toBe('failed');
    // when the fault clears, the app recovers by itself (retried every second, as Redis does)
    store.full = false;
    const deadline = Date.now() + 5000;
    while (app.status !== 'ready' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // then the state shows only what was durable, and commands flow again
    expect(app.status).toBe('ready');
    expect(Object.fromEntries(app.state.entries())).toEqual({ acked: 1 });
    const next = await app.execute(new Put('later', 4));
    expect(next.firstSeq).toBe(2);
    await app.close();
    const reopened = await createApp({ handlers: [PutHandler], store, logger: silentLogger });
    expect(Object.fromEntries(reopened.state.entries())).toEqual({ acked: 1, later: 4 });
    await reopened.close();
  });
});
