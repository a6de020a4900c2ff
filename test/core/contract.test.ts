import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type App,
  type AppliedEvent,
  AppendConflictError,
  CannotCompactError,
  CommandHandler,
  createApp,
  PersistenceError,
  type ReadonlyKeyValueState,
  SET,
  silentLogger,
} from 'appendonly';
import { fixtures, runStoreConformance } from 'appendonly/testing';
import { recordingLogger } from '../support/helpers';
import { JsonLinesStore } from './stores/json-lines-store';
import { SharedLog, SharedLogStore } from './stores/shared-log-store';

const { Put } = fixtures;

/** Appends `item` to the list at `key`: a decision over the state (what it reads, it rewrites whole). */
class Push {
  constructor(
    readonly key: string,
    readonly item: number,
  ) {}
}

/** How often each Push was decided, to see a retried command decided again. */
const decisions = new Map<Push, number>();

@CommandHandler(Push)
class PushHandler {
  execute(c: Push, state: ReadonlyKeyValueState) {
    decisions.set(c, (decisions.get(c) ?? 0) + 1);
    const list = (state.get(c.key) as number[] | undefined) ?? [];
    return [SET(c.key, [...list, c.item])];
  }
}

/** As Push, decided after `gate` opens: an async handler, reading the state once it resumes. */
class SlowPush {
  constructor(
    readonly key: string,
    readonly item: number,
    readonly gate: Promise<void>,
  ) {}
}

@CommandHandler(SlowPush)
class SlowPushHandler {
  async execute(c: SlowPush, state: ReadonlyKeyValueState) {
    await c.gate;
    decisions.set(c, (decisions.get(c) ?? 0) + 1);
    const list = (state.get(c.key) as number[] | undefined) ?? [];
    return [SET(c.key, [...list, c.item])];
  }
}

const classes = {
  handlers: [...fixtures.conformanceClasses.handlers, PushHandler, SlowPushHandler],
  projections: fixtures.conformanceClasses.projections,
};

function tempFile(): { file: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-contract-'));
  return {
    file: path.join(dir, 'log.jsonl'),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

runStoreConformance('JsonLinesStore (four methods only)', () => {
  const { file, cleanup } = tempFile();
  return { open: () => new JsonLinesStore(file), cleanup };
});

describe('a store of four methods', () => {
  let file: string;
  let cleanup: () => void;
  beforeEach(() => ({ file, cleanup } = tempFile()));
  afterEach(() => cleanup());

  it('runs a real app: execute, close, reopen, replay', async () => {
    // given
    const app = await createApp({ ...classes, store: new JsonLinesStore(file), logger: silentLogger });
    await app.execute(new Put('a', 1));
    await app.execute(new Push('list', 1));
    await app.execute(new Push('list', 2));
    await app.close();
    // when
    const reopened = await createApp({ ...classes, store: new JsonLinesStore(file), logger: silentLogger });
    // then
    expect(Object.fromEntries(reopened.state.entries())).toEqual({ a: 1, list: [1, 2] });
    expect((await reopened.execute(new Put('b', 2))).firstSeq).toBe(4);
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(4);
    await reopened.close();
  });

  it('has no compaction: app.compact() rejects with CANNOT_COMPACT, and nothing changes', async () => {
    const app = await createApp({ ...classes, store: new JsonLinesStore(file), logger: silentLogger });
    await app.execute(new Put('a', 1));
    const attempt = app.compact();
    await expect(attempt).rejects.toBeInstanceOf(CannotCompactError);
    await expect(attempt).rejects.toMatchObject({ code: 'CANNOT_COMPACT' });
    expect(fs.readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(1);
    await app.close();
  });

  it('has no stats: app.stats() keeps the app fields and no store field', async () => {
    const app = await createApp({ ...classes, store: new JsonLinesStore(file), logger: silentLogger });
    await app.execute(new Put('a', 1));
    const stats = app.stats();
    expect(stats).toMatchObject({
      status: 'ready',
      keys: 1,
      lastSeq: 1,
      durableSeq: 1,
      commandsProcessed: 1,
    });
    expect(stats).not.toHaveProperty('store');
    await app.close();
  });
});

describe('a shared log: another writer appended first', () => {
  const apps: App[] = [];
  const open = async (log: SharedLog): Promise<{ app: App; store: SharedLogStore }> => {
    const store = new SharedLogStore(log);
    const app = await createApp({ ...classes, store, logger: silentLogger });
    apps.push(app);
    return { app, store };
  };
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    decisions.clear();
  });

  it('a command decided on a stale state is decided again, after the other writer’s, and logged once', async () => {
    // given: two writers on one empty log
    const log = new SharedLog();
    const a = await open(log);
    const b = await open(log);
    // when: both decide at seq 1; A's lands first
    const first = a.app.execute(new Push('list', 1));
    const stale = new Push('list', 2);
    const second = b.app.execute(stale);
    await first;
    const result = await second;
    // then: B applied A's command, then decided its own on top of it
    expect(result.firstSeq).toBe(2);
    expect(b.app.state.get('list')).toEqual([1, 2]);
    expect(log.groups.map((g) => g.events[0].data)).toEqual([
      { key: 'list', value: [1] },
      { key: 'list', value: [1, 2] },
    ]);
    expect(decisions.get(stale)).toBe(2);
    expect(b.store.conflicts).toBe(1);
    expect(b.app.stats()).toMatchObject({ lastSeq: 2, durableSeq: 2 });
  });

  it('with 64 in flight, every one is rolled back and decided again in dispatch order', async () => {
    // given
    const log = new SharedLog();
    const a = await open(log);
    const b = await open(log);
    const seen: AppliedEvent[] = [];
    b.app.events$.subscribe((e) => seen.push(e));
    // when: A's command lands before any of B's 64
    const mine = a.app.execute(new Push('list', -1));
    const pending = Array.from({ length: 64 }, (_, i) => b.app.execute(new Push('list', i)));
    await mine;
    const results = await Promise.all(pending);
    // then
    const expected = [-1, ...Array.from({ length: 64 }, (_, i) => i)];
    expect(b.app.state.get('list')).toEqual(expected);
    expect(results.map((r) => r.firstSeq)).toEqual(Array.from({ length: 64 }, (_, i) => i + 2));
    expect(log.groups).toHaveLength(65);
    expect(log.groups[64].events[0].data).toEqual({ key: 'list', value: expected });
    // events$ reported A's command (caught up) and B's, each once, with their final numbers
    expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: 65 }, (_, i) => i + 1));
    // a replay of the log gives B's state
    const c = await open(log);
    expect(c.app.state.get('list')).toEqual(expected);
  });

  it('an async decision that straddles a conflict is decided again, after the commands dispatched before it', async () => {
    // given: B has a command in flight that will conflict, and an async one deciding
    const log = new SharedLog();
    const a = await open(log);
    const b = await open(log);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const mine = a.app.execute(new Push('list', 0));
    const p1 = b.app.execute(new Push('list', 1));
    const slow = new SlowPush('list', 2, gate);
    const p2 = b.app.execute(slow);
    const p3 = b.app.execute(new Push('list', 3));
    await mine;
    // when: the conflict is resolved (A's command applied) while the async handler still waits
    for (let turns = 0; b.app.state.get('list')?.toString() !== '0'; turns++) {
      if (turns > 100_000) throw new Error('the conflict was never resolved');
      await new Promise((resolve) => setImmediate(resolve));
    }
    release();
    await Promise.all([p1, p2, p3]);
    // then: its first decision (on [0]) was stale; it was decided again after p1, before p3
    expect(b.app.state.get('list')).toEqual([0, 1, 2, 3]);
    expect(decisions.get(slow)).toBe(2);
    expect(log.groups.map((g) => (g.events[0].data as { value: number[] }).value.at(-1))).toEqual([
      0, 1, 2, 3,
    ]);
  });

  it('events$ reports a command once durable, never at apply time', async () => {
    const log = new SharedLog();
    const { app } = await open(log);
    const seen: number[] = [];
    app.events$.subscribe((e) => seen.push(e.seq));
    const pending = app.execute(new Put('a', 1));
    // applied (the state shows it) but not durable yet: the append lands on the next turn
    expect(app.state.get('a')).toBe(1);
    expect(app.stats()).toMatchObject({ lastSeq: 1, durableSeq: 0 });
    expect(seen).toEqual([]);
    await pending;
    expect(seen).toEqual([1]);
    expect(app.stats()).toMatchObject({ lastSeq: 1, durableSeq: 1 });
  });

  it('gives up with AppendConflictError when the log never stays still, leaving a state that replays', async () => {
    // given: a rival that appends before every append of ours
    const log = new SharedLog();
    const { app } = await open(log);
    let n = 0;
    log.rival = () => ({ seq: log.head + 1, time: 0, events: [SET('rival', ++n)] });
    // when
    const attempt = app.execute(new Push('list', 1));
    // then
    await expect(attempt).rejects.toBeInstanceOf(AppendConflictError);
    await expect(attempt).rejects.toThrow(/gave up after 10 decisions/);
    log.rival = null;
    expect(app.state.get('list')).toBeUndefined();
    expect(app.state.get('rival')).toBe(n);
    await app.execute(new Push('list', 2));
    const replayed = await open(log);
    expect(Object.fromEntries(replayed.app.state.entries())).toEqual(Object.fromEntries(app.state.entries()));
  });
});

describe('a shared log: following the other writers', () => {
  const apps: App[] = [];
  const open = async (log: SharedLog, watch = true): Promise<App> => {
    const app = await createApp({
      ...classes,
      store: new SharedLogStore(log, { watch }),
      logger: silentLogger,
    });
    apps.push(app);
    return app;
  };
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  it('an idle instance applies the other writers’ commands as they commit, and reports them on events$', async () => {
    // given
    const log = new SharedLog();
    const a = await open(log);
    const b = await open(log);
    const seen: number[] = [];
    b.events$.subscribe((e) => seen.push(e.seq));
    // when
    for (let i = 1; i <= 5; i++) await a.execute(new Push('list', i));
    await b.sync();
    // then
    expect(b.state.get('list')).toEqual([1, 2, 3, 4, 5]);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(b.stats()).toMatchObject({ lastSeq: 5, durableSeq: 5, lag: 0 });
  });

  it('sync() gives read-your-writes across instances, even with no hint from the store', async () => {
    // given: B does not watch; only sync() can bring it up to date
    const log = new SharedLog();
    const a = await open(log);
    const b = await open(log, false);
    await a.execute(new Put('x', 1));
    await a.execute(new Put('x', 2));
    expect(b.state.get('x')).toBeUndefined();
    // when
    await b.sync();
    // then
    expect(b.state.get('x')).toBe(2);
    await b.execute(new Push('list', 9));
    await a.sync();
    expect(a.state.get('list')).toEqual([9]);
  });

  it('two busy instances end in the same state as a replay of the log', async () => {
    const log = new SharedLog();
    const a = await open(log);
    const b = await open(log);
    await Promise.all([
      ...Array.from({ length: 50 }, (_, i) => a.execute(new Push('list', i))),
      ...Array.from({ length: 50 }, (_, i) => b.execute(new Push('list', 100 + i))),
    ]);
    await a.sync();
    await b.sync();
    const list = a.state.get('list') as number[];
    expect(list).toHaveLength(100);
    expect(b.state.get('list')).toEqual(list);
    const c = await open(log);
    expect(c.state.get('list')).toEqual(list);
    // each instance's own commands are in the log in its dispatch order
    expect(list.filter((n) => n < 100)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(list.filter((n) => n >= 100)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
  });

  it('an instance behind the compaction point reloads from the snapshot and goes on; readers see the old state until the new one is whole', async () => {
    // given: B read the log up to seq 2 and stopped following; A went on (a key deleted, one
    // changed, one added), then the log was compacted to A's state and A wrote once more
    const log = new SharedLog();
    const a = await open(log);
    const logger = recordingLogger();
    const b = await createApp({ ...classes, store: new SharedLogStore(log), logger });
    apps.push(b);
    await a.execute(new Put('gone', 1));
    await a.execute(new Put('x', 1));
    await b.sync();
    const mirror = new Map<string, unknown>(b.state.entries());
    b.state.changes$.subscribe((c) => {
      if (c.type === 'clear') mirror.clear();
      else if (c.type === 'delete') mirror.delete(c.key);
      else mirror.set(c.key, c.value);
    });
    await a.execute(new fixtures.Remove(['gone']));
    await a.execute(new Put('x', 2));
    await a.execute(new Put('y', 3));
    log.compact(Object.fromEntries(a.state.entries()));
    await a.execute(new Put('z', 4));
    // when: B catches up; its reload is looked at half way, between the snapshot and the events
    let halfWay: { state: Record<string, unknown>; seq: number } | null = null;
    log.betweenSnapshotAndGroups = async () => {
      halfWay = { state: Object.fromEntries(b.state.entries()), seq: b.stats().durableSeq };
    };
    await b.sync();
    // then: until the reload was whole, B showed the state it had, at its seq
    expect(halfWay).toEqual({ state: { gone: 1, x: 1 }, seq: 2 });
    expect(logger.lines).toEqual([
      'warn: the shared log: the events after seq 2 up to 5 were compacted away; the first event still in the log is seq 6; reloading the state from the log',
    ]);
    // it holds A's state now, loaded from the snapshot, and changes$ said so (the deleted key too)
    expect(Object.fromEntries(b.state.entries())).toEqual({ x: 2, y: 3, z: 4 });
    expect(Object.fromEntries(mirror)).toEqual({ x: 2, y: 3, z: 4 });
    expect(b.stats()).toMatchObject({ lastSeq: 6, durableSeq: 6, entriesReplayed: 2, groupsReplayed: 1 });
    // and goes on: its next command lands after A's, and A follows it
    expect((await b.execute(new Push('list', 1))).firstSeq).toBe(7);
    await a.sync();
    expect(Object.fromEntries(a.state.entries())).toEqual(Object.fromEntries(b.state.entries()));
  });

  it('a reload that fails half way leaves the state and its seq as they were; the next catch-up reloads', async () => {
    // given: B is behind the compaction point
    const log = new SharedLog();
    const a = await open(log);
    const b = await open(log, false);
    await a.execute(new Put('x', 1));
    await b.sync();
    await a.execute(new Put('x', 2));
    await a.execute(new Put('y', 3));
    log.compact(Object.fromEntries(a.state.entries()));
    await a.execute(new Put('z', 4));
    // when: the read of its reload fails after the snapshot's entries
    log.betweenSnapshotAndGroups = async () => {
      throw new PersistenceError('the connection was lost', 'ECONNRESET');
    };
    await expect(b.sync()).rejects.toThrow('the connection was lost');
    // then: nothing of the half-read log shows
    expect(Object.fromEntries(b.state.entries())).toEqual({ x: 1 });
    expect(b.stats()).toMatchObject({ status: 'ready', lastSeq: 1, durableSeq: 1 });
    // and once the log reads again, the next catch-up reloads it whole
    log.betweenSnapshotAndGroups = null;
    await b.sync();
    expect(Object.fromEntries(b.state.entries())).toEqual({ x: 2, y: 3, z: 4 });
    expect(b.stats()).toMatchObject({ lastSeq: 4, durableSeq: 4 });
  });
});
