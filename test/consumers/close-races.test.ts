import { AppClosedError, createApp, type EventGroup, MemoryStore, silentLogger } from 'appendonly';
import { fixtures } from 'appendonly/testing';

const { Put, conformanceClasses } = fixtures;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A gate that holds whatever awaits `passed()` until `open()` is called. */
class Gate {
  private opened: Promise<void> | null = null;
  private release: () => void = () => {};
  private arrive: () => void = () => {};
  /** Resolves once something waits at the gate. */
  waiting: Promise<void> = Promise.resolve();
  close(): void {
    this.opened = new Promise((r) => (this.release = r));
    this.waiting = new Promise((r) => (this.arrive = r));
  }
  open(): void {
    this.opened = null;
    this.release();
  }
  async passed(): Promise<void> {
    if (this.opened === null) return;
    this.arrive();
    await this.opened;
  }
}

/** A memory store whose appends and consumer-record loads can be held at a gate. */
class GatedStore extends MemoryStore {
  readonly appends = new Gate();
  readonly records = new Gate();
  override async append(group: EventGroup): Promise<void> {
    await this.appends.passed();
    return super.append(group);
  }
  override async loadConsumers() {
    await this.records.passed();
    return super.loadConsumers();
  }
}

/**
 * `app.close()` stops every consumer and stores its position. A consumer that is still being
 * subscribed, or still handing its dead letters again, when the close begins must end with it:
 * not run on after the close, not hold the close for a whole retry back-off, and not lose a
 * dead letter whose retry the close cut short.
 */
describe('consumers and app.close()', () => {
  it('refuses a subscribe whose record was still loading when the app closed; nothing runs after', async () => {
    // given: a command whose append is in flight (the close waits for it), and a subscribe
    // waiting for its record
    const store = new GatedStore();
    const app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    await app.execute(new Put('a', 1));
    store.appends.close();
    const pending = app.execute(new Put('b', 2));
    await store.appends.waiting;
    store.records.close();
    const handled: number[] = [];
    const subscribing = app.subscribe('late', (e) => {
      handled.push(e.seq);
    });
    const outcome = subscribing.then(
      () => 'subscribed',
      (err: unknown) => err,
    );
    await store.records.waiting;
    // when: the app closes, the record loads while the close waits for the append, then the
    // append ends
    const closing = app.close();
    store.records.open();
    await sleep(50);
    store.appends.open();
    await closing;
    await pending;
    // then: the subscribe is refused and no handler ran, then or later
    expect(await outcome).toBeInstanceOf(AppClosedError);
    await sleep(100);
    expect(handled).toEqual([]);
    expect(app.consumer('late')).toBeUndefined();
  });

  it('keeps a dead letter marked for retry when the close cuts its retry short, and closes at once', async () => {
    // given: seq 1 parked by "mailer", then marked for retry (as `appendonly consumers retry` does)
    const store = new MemoryStore();
    const app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    await app.execute(new Put('a', 1));
    const first = await app.subscribe(
      'mailer',
      () => {
        throw new Error('smtp down');
      },
      { maxAttempts: 1 },
    );
    await first.caughtUp();
    await first.close();
    const [parked] = await store.loadConsumers();
    await store.saveConsumer({ ...parked, parked: parked.parked.map((p) => ({ ...p, retry: true })) });
    // when: its retry fails once and waits a long back-off, and the app closes meanwhile
    let calls = 0;
    let called: () => void = () => {};
    const firstCall = new Promise<void>((r) => (called = r));
    const subscribing = app.subscribe(
      'mailer',
      () => {
        calls++;
        called();
        throw new Error('smtp still down');
      },
      { retryDelayMs: 60_000, maxRetryDelayMs: 60_000 },
    );
    await firstCall;
    await app.close();
    await subscribing.catch(() => {});
    // then: the close did not wait out the back-off, the handler ran once, and seq 1 is still
    // parked and marked for retry, for the next start
    expect(calls).toBe(1);
    const reopened = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    const [after] = await store.loadConsumers();
    await reopened.close();
    expect(after.parked.map((p) => ({ seq: p.seq, retry: p.retry }))).toEqual([{ seq: 1, retry: true }]);
  }, 30_000);

  it('closes a consumer at once while its page read fails and it backs off', async () => {
    // given: a consumer whose page reads of the log (limit > 1: not subscribe's own look-ups)
    // fail after 100 ms, backing off 60 s between tries
    let reading: () => void = () => {};
    const readBegun = new Promise<void>((r) => (reading = r));
    class FailingReads extends MemoryStore {
      failing = false;
      override async read(after: number, limit: number): Promise<readonly EventGroup[]> {
        if (!this.failing || limit <= 1) return super.read(after, limit);
        reading();
        await sleep(100);
        throw new Error('connection reset');
      }
    }
    const store = new FailingReads();
    const app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    await app.execute(new Put('a', 1));
    store.failing = true;
    const sub = await app.subscribe('reader', () => {}, { retryDelayMs: 60_000, maxRetryDelayMs: 60_000 });
    // when: it closes while a read is in flight (which fails after the close began)
    await readBegun;
    // then: the close ends before the 30 s timeout, not after the 60 s back-off
    await sub.close();
    expect(sub.stats().status).toBe('closed');
    await app.close();
  }, 30_000);
});
