import {
  type App,
  createApp,
  type EventGroup,
  MemoryStore,
  PersistenceError,
  silentLogger,
} from 'appendonly';
import { fixtures } from 'appendonly/testing';

const { Count, Put, conformanceClasses } = fixtures;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A memory store whose log cannot be written for a while, as a full disk or a lost database:
 * while `full`, appends and `recover()` fail with PersistenceError. `failAfterCommit` makes the
 * next append of an event of that type commit, then fail (a connection lost after COMMIT was
 * sent), and the log is out of reach from then on. Fault injection: the
 * log kept is the MemoryStore's real one.
 */
class OutageStore extends MemoryStore {
  full = false;
  failAfterCommit: string | null = null;
  override async append(group: EventGroup): Promise<void> {
    if (this.full) throw new PersistenceError('write: no space left on device', 'ENOSPC');
    await super.append(group);
    if (this.failAfterCommit !== null && group.events.some((e) => e.type === this.failAfterCommit)) {
      this.failAfterCommit = null;
      this.full = true;
      throw new PersistenceError('COMMIT: connection lost before its answer', 'ECONNRESET');
    }
  }
  async recover(): Promise<void> {
    if (this.full) throw new PersistenceError('still unreachable', 'ENOSPC');
  }
}

async function until(what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !done(); i++) await sleep(50);
  if (!done()) throw new Error(`timed out waiting until ${what}`);
}

/** How many of the log's groups hold an event of type `type` on `key`. */
async function logged(store: MemoryStore, type: string, key: string): Promise<number> {
  const groups = await store.read(0, 1_000);
  return groups.filter((g) =>
    g.events.some((e) => e.type === type && (e.data as { key?: string }).key === key),
  ).length;
}

/**
 * A consumer's reaction is appended through the app. While the app cannot write its log, the
 * event is not at fault: the reaction waits for the log to come back, however long that is,
 * and is neither parked after `maxAttempts` nor logged twice.
 */
describe('a reaction while the log cannot be written', () => {
  let app: App | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });

  it('waits out the outage, then is logged once; nothing is parked', async () => {
    // given: "shipping" reacts to an order with a counted shipment, and holds the order's event
    const store = new OutageStore();
    app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    let holding: () => void = () => {};
    const held = new Promise<void>((r) => (holding = r));
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const sub = await app.subscribe(
      'shipping',
      async (e) => {
        if ((e.event.data as { key?: string }).key !== 'order') return undefined;
        holding();
        await gate;
        return new Count('shipped', 1);
      },
      { maxAttempts: 2, retryDelayMs: 10, maxRetryDelayMs: 50 },
    );
    await app.execute(new Put('order', 1));
    await held;
    // when: the log fails (the app refuses commands) while the reaction is decided, for longer
    // than its attempts and back-offs last, then comes back
    store.full = true;
    await expect(app.execute(new Put('x', 2))).rejects.toThrow(PersistenceError);
    expect(app.status).toBe('failed');
    release();
    await until('the reaction waits', () => sub.stats().status === 'retrying');
    await sleep(500);
    store.full = false;
    await until('the app recovers', () => app?.status === 'ready');
    await sub.caughtUp();
    // then: one shipment, in the log once, and no dead letter
    expect(app.state.get('shipped')).toBe(1);
    expect(await logged(store, 'Counted', 'shipped')).toBe(1);
    expect(sub.stats().parked).toBe(0);
  }, 60_000);

  it('is not appended again when its append committed but failed before the answer', async () => {
    // given: "shipping" reacts to an order with a counted shipment
    const store = new OutageStore();
    app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    const sub = await app.subscribe(
      'shipping',
      (e) => ((e.event.data as { key?: string }).key === 'order' ? new Count('shipped', 1) : undefined),
      { retryDelayMs: 10, maxRetryDelayMs: 50 },
    );
    // when: the reaction's append commits, then fails, and the log is out of reach for a while
    store.failAfterCommit = 'Counted';
    await app.execute(new Put('order', 1));
    await until('the app fails', () => app?.status === 'failed');
    await sleep(300);
    store.full = false;
    await until('the app recovers', () => app?.status === 'ready');
    await sub.caughtUp();
    // then: the shipment is counted once, from the one append that committed
    expect(await logged(store, 'Counted', 'shipped')).toBe(1);
    expect(app.state.get('shipped')).toBe(1);
    expect(sub.stats().parked).toBe(0);
  }, 60_000);
});
