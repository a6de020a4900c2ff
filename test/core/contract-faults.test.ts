import 'reflect-metadata';
import {
  type App,
  type AppliedEvent,
  CommandHandler,
  type CommandResult,
  createApp,
  type EventStore,
  KeyValueState,
  PersistenceError,
  type ReadonlyKeyValueState,
  SET,
  silentLogger,
} from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { ProbeStore } from './stores/probe-store';
import { SharedLog, SharedLogStore } from './stores/shared-log-store';

/*
 * Faults on the shared-log path of the App: a conflict met while closing, a write failure next to
 * a conflict, a decision finishing during a catch-up, a catch-up failing half way, and the undo
 * journal across a snapshot and across `forget()`. Each case was a bug: the test states what the
 * App must do instead.
 */

const { Put, PutMany, Remove, Count } = fixtures;

/** How often each command was decided, to see a retried command decided again. */
const decisions = new Map<object, number>();

/** A command that decides no events. */
class Noop {
  constructor(readonly key: string) {}
}

@CommandHandler(Noop)
class NoopHandler {
  execute(c: Noop) {
    decisions.set(c, (decisions.get(c) ?? 0) + 1);
    return [];
  }
}

/** Adds one to the counter at `key`, once `gate` opens: an async decision over the state. */
class Slow {
  constructor(
    readonly key: string,
    readonly gate: Promise<void>,
  ) {}
}

@CommandHandler(Slow)
class SlowHandler {
  async execute(c: Slow, state: ReadonlyKeyValueState) {
    await c.gate;
    decisions.set(c, (decisions.get(c) ?? 0) + 1);
    return [SET(c.key, ((state.get(c.key) as number | undefined) ?? 0) + 1)];
  }
}

const classes = {
  handlers: [...fixtures.conformanceClasses.handlers, NoopHandler, SlowHandler],
  projections: fixtures.conformanceClasses.projections,
};

/** One event-loop turn. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Waits, a turn at a time, until `done()` holds; fails after `limit` turns. */
async function until(done: () => boolean, what: string, limit = 10_000): Promise<void> {
  for (let turns = 0; !done(); turns++) {
    if (turns >= limit) throw new Error(`never happened: ${what}`);
    await turn();
  }
}

/** How a command's promise settled, without leaving a rejection unhandled. */
type Outcome = { readonly ok: CommandResult } | { readonly err: unknown };
const outcome = (p: Promise<CommandResult>): Promise<Outcome> =>
  p.then(
    (ok) => ({ ok }),
    (err: unknown) => ({ err }),
  );

const contents = (app: App) => Object.fromEntries(app.state.entries());

const apps: App[] = [];
async function open(store: EventStore): Promise<App> {
  const app = await createApp({ ...classes, store, logger: silentLogger });
  apps.push(app);
  return app;
}

afterEach(async () => {
  // some of these apps failed on purpose: closing them may reject
  for (const app of apps.splice(0)) await app.close().catch(() => {});
  decisions.clear();
});

describe('a shared log: faults on the conflict and follow paths', () => {
  it('F1 close() waits for a conflict being resolved, and the store sees no call after its close', async () => {
    // given: B appended seq 1; A does not know
    const log = new SharedLog();
    const b = await open(new SharedLogStore(log));
    const store = new ProbeStore(log);
    const a = await open(store);
    await b.execute(new Put('x', 1));
    // when: A appends at seq 1 (a conflict) and is closed at once
    const pending = outcome(a.execute(new Put('y', 2)));
    await a.close();
    // then: the command was decided again and landed; its promise settles with no further turn
    const atClose = await Promise.race([pending, turn().then(() => 'still pending' as const)]);
    expect(atClose).toMatchObject({ ok: { firstSeq: 2, lastSeq: 2 } });
    expect(store.afterClose).toEqual([]);
    expect(log.groups.map((g) => g.seq)).toEqual([1, 2]);
  });

  it('F2 a PersistenceError on c1, then a conflict on c2: both reject with the PersistenceError', async () => {
    // given
    const store = new ProbeStore(new SharedLog());
    const app = await open(store);
    store.failNext = ['persist', 'conflict'];
    // when: c1's write fails; c2, decided on top of it, is refused as a conflict
    const c1 = outcome(app.execute(new Put('a', 1)));
    const c2 = outcome(app.execute(new Put('b', 2)));
    const [r1, r2] = await Promise.all([c1, c2]);
    // then: neither resolves (with undefined or anything else); both hear of the write failure
    expect(r1).not.toHaveProperty('ok');
    expect(r2).not.toHaveProperty('ok');
    const e1 = (r1 as { err: unknown }).err;
    const e2 = (r2 as { err: unknown }).err;
    expect(e1).toBeInstanceOf(PersistenceError);
    expect(e2).toBeInstanceOf(PersistenceError);
    expect((e2 as PersistenceError).code).toBe((e1 as PersistenceError).code);
    expect(app.state.get('a')).toBeUndefined();
    expect(app.state.get('b')).toBeUndefined();
  });

  it('F3 a conflict on c1, then a PersistenceError on c2: both reject, and no rejection is left unhandled', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      // given
      const store = new ProbeStore(new SharedLog());
      const app = await open(store);
      store.failNext = ['conflict', 'persist'];
      // when: c1 is refused as a conflict; c2's write fails while the conflict is resolved
      const [r1, r2] = await Promise.all([
        outcome(app.execute(new Put('a', 1))),
        outcome(app.execute(new Put('b', 2))),
      ]);
      // a rejection nobody handles is reported once the microtasks of a turn have run
      for (let i = 0; i < 10; i++) await turn();
      // then
      expect(r1).not.toHaveProperty('ok');
      expect(r2).not.toHaveProperty('ok');
      expect((r1 as { err: unknown }).err).toBeInstanceOf(PersistenceError);
      expect((r2 as { err: unknown }).err).toBeInstanceOf(PersistenceError);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('F4 an async decision under way when others append: the catch-up waits for it, nothing appends during the replay', async () => {
    // given: A (watching) is busy deciding a command that waits on a gate
    const log = new SharedLog();
    const store = new ProbeStore(log, { watch: true });
    const a = await open(store);
    const b = await open(new SharedLogStore(log, { watch: true }));
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const slow = new Slow('n', gate);
    const decided = outcome(a.execute(slow));
    // when: B appends, A hears of it (its catch-up, slow, waits for the decision), the gate opens
    store.replaySlow = true;
    await b.execute(new Put('x', 1));
    await until(() => a.stats().lag === 1, 'A heard of B').finally(openGate);
    const result = await decided;
    await until(() => a.stats().durableSeq === log.head && a.stats().lag === 0, 'A caught up');
    // then: the decision went to its append (which found B's command first) before the replay,
    // was decided again after it, and appended after it
    expect(store.appendDuringReplay).toBe(0);
    expect(result).toMatchObject({ ok: { firstSeq: 2, lastSeq: 2 } });
    expect(decisions.get(slow)).toBe(2);
    expect(log.groups.map((g) => g.seq)).toEqual([1, 2]);
    // and A's state is what a fresh replay of the log gives
    const fresh = await open(new SharedLogStore(log));
    expect(contents(a)).toEqual(contents(fresh));
    expect(contents(a)).toEqual({ x: 1, n: 1 });
  });

  it('F6 a command deciding no events right after a conflicting one is decided again, not rejected', async () => {
    // given: B appended seq 1; A does not know
    const log = new SharedLog();
    const b = await open(new SharedLogStore(log));
    const a = await open(new SharedLogStore(log));
    await b.execute(new Put('x', 1));
    // when: A appends at seq 1 (a conflict), then decides a command with no events on that stale state
    const conflicting = outcome(a.execute(new Put('y', 1)));
    const empty = new Noop('z');
    const nothing = outcome(a.execute(empty));
    const [r1, r2] = await Promise.all([conflicting, nothing]);
    // then: both are decided again after B's command; the empty one resolves, after the retried one
    expect(r1).toMatchObject({ ok: { firstSeq: 2, lastSeq: 2 } });
    expect(r2).toEqual({ ok: { events: [], firstSeq: 3, lastSeq: 2 } });
    expect(decisions.get(empty)).toBe(2);
    expect(log.groups.map((g) => g.seq)).toEqual([1, 2]);
  });

  it('F7 a catch-up that fails half way: the next one reports and applies each command once', async () => {
    // given: B appended two commands, each counting one
    const log = new SharedLog();
    const store = new ProbeStore(log);
    const a = await open(store);
    const b = await open(new SharedLogStore(log));
    const seen: number[] = [];
    a.events$.subscribe((e: AppliedEvent) => seen.push(e.seq));
    await b.execute(new Count('n', 1));
    await b.execute(new Count('n', 1));
    // when: A's first catch-up reads seq 1, then fails at seq 2; the second reads on
    store.replayFailOnce = true;
    await expect(a.sync()).rejects.toThrow(/read error/);
    expect(seen).toEqual([1]);
    expect(a.state.get('n')).toBe(1);
    await a.sync();
    // then: each command was reported once, and counted once
    expect(seen).toEqual([1, 2]);
    expect(a.state.get('n')).toBe(2);
    expect(a.stats()).toMatchObject({ lastSeq: 2, durableSeq: 2 });
    const fresh = await open(new SharedLogStore(log));
    expect(contents(a)).toEqual(contents(fresh));
  });

  it('F8 the journal keeps its marks across forget(): after a conflict, memory is a replay of the log', async () => {
    // given: c1 lands; c2 (no undo entry: it deletes a missing key) and c3 are refused as conflicts
    const log = new SharedLog();
    const store = new ProbeStore(log);
    const a = await open(store);
    store.failNext = [null, 'conflict', 'conflict'];
    // when: c1 becomes durable (forget() drops its undo) while c2 is in flight, then c3 is dispatched
    const c1 = a.execute(
      new PutMany([
        ['a', 1],
        ['b', 1],
        ['c', 1],
        ['d', 1],
        ['e', 1],
      ]),
    );
    const c2 = outcome(a.execute(new Remove(['missing'])));
    await c1;
    const c3 = outcome(a.execute(new Count('n', 1)));
    const [r2, r3] = await Promise.all([c2, c3]);
    // then: both were decided again and logged once; the rollback undid c3, so it counted once
    expect(r2).toMatchObject({ ok: { firstSeq: 6 } });
    expect(r3).toMatchObject({ ok: { firstSeq: 7 } });
    expect(a.state.get('n')).toBe(1);
    const reopened = await open(new SharedLogStore(log));
    expect(contents(a)).toEqual(contents(reopened));
  });
});

describe('KeyValueState: the undo journal across a snapshot', () => {
  it('F5 rollbackTo across a clear() and a snapshot release() restores the state, and a later snapshot works', () => {
    // given: a durable key, then a snapshot, a command that clears and sets, and the snapshot released
    const kv = new KeyValueState();
    kv.begin(true);
    kv.set('a', 1);
    kv.commit(true);
    const snap = kv.takeSnapshot(1);
    const mark = kv.begin(true);
    kv.clear();
    kv.set('b', 2);
    kv.commit(true);
    snap.release();
    // when: the command is rolled back (as a conflict does)
    kv.rollbackTo(mark);
    // then: the state is the one before it
    expect(kv.toObject()).toEqual({ a: 1 });
    expect(kv.size).toBe(1);
    // and a later snapshot can be taken (none is left open), stays frozen, and its writes merge
    const next = kv.takeSnapshot(2);
    kv.set('c', 3);
    kv.delete('a');
    expect(Object.fromEntries(next.entries())).toEqual({ a: 1 });
    expect(kv.toObject()).toEqual({ c: 3 });
    next.release();
    expect(kv.toObject()).toEqual({ c: 3 });
    expect(kv.size).toBe(1);
    expect(() => kv.takeSnapshot(3).release()).not.toThrow();
  });
});
