import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ConsumerLease, ConsumerError } from 'appendonly';
import type { PostgresStore } from 'appendonly/adapters/postgres';
import { type Child, useChildren } from '../support/child';
import { admin, usePostgres } from '../support/postgres';
import { Increment } from './domain';
import { bareStore, eventually, useApps } from './helpers';

/** The backend pid of the session holding the lock of consumer `recorder`'s name (two-key advisory locks). */
async function lockHolderPid(url: string): Promise<number | null> {
  const { rows } = await admin(
    url,
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted
       AND classid::int = hashtext($1) AND objid::int = hashtext($2)`,
    ['appendonly consumer appendonly.holder', 'recorder'],
  );
  return rows.length === 0 ? null : Number(rows[0].pid);
}

/** The record file's lines as [holder id, seq]. */
function handled(file: string): [string, number][] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [id, seq] = l.split(' ');
      return [id, Number(seq)];
    });
}

/** Waits for a `status` line of one of `statuses` printed from line `from` on. */
function status(child: Child, statuses: string[], from = 0): Promise<string> {
  return child.waitFor((l) => statuses.some((s) => l === `status ${s}`), from, 30_000);
}

/**
 * Holders' runs in the record: each maximal run of one holder's lines. With one holder at a
 * time, a holder that lost the name never appears again after the next one began.
 */
function runs(lines: [string, number][]): { id: string; seqs: number[] }[] {
  const out: { id: string; seqs: number[] }[] = [];
  for (const [id, seq] of lines) {
    const last = out[out.length - 1];
    if (last !== undefined && last.id === id) last.seqs.push(seq);
    else out.push({ id, seqs: [seq] });
  }
  return out;
}

/** Each run is consecutive seqs, resumes at or before where the previous one stopped (+1), and all reach `head`. */
function expectNothingSkipped(lines: [string, number][], head: number): void {
  const all = runs(lines);
  let reached = 0;
  for (const r of all) {
    expect(r.seqs[0]).toBeLessThanOrEqual(reached + 1);
    expect(r.seqs).toEqual(r.seqs.map((_, i) => r.seqs[0] + i));
    reached = Math.max(reached, r.seqs[r.seqs.length - 1]);
  }
  expect(reached).toBe(head);
}

/**
 * Waits until B handled up to `head`, then checks the takeover: A's lines, then B's, never
 * interleaved (one holder at a time), nothing skipped, and B's position stored up to `head`.
 */
async function expectTakenOver(url: string, log: string, record: string, head: number): Promise<void> {
  await eventually(() => handled(record).some(([id, seq]) => id === 'B' && seq === head), 30_000);
  const lines = handled(record);
  expect(runs(lines).map((r) => r.id)).toEqual(['A', 'B']);
  expectNothingSkipped(lines, head);
  await eventually(async () => {
    const { rows } = await admin(url, 'SELECT position::int AS p FROM appendonly.consumers WHERE log = $1', [
      log,
    ]);
    return rows[0]?.p === head;
  }, 10_000);
}

/** Asks for `name` until `store` has it (its lock freed when the holder's session ended). */
async function takeWhenFree(store: PostgresStore, name: string): Promise<ConsumerLease> {
  let taken: ConsumerLease | null = null;
  await eventually(async () => {
    taken = await store.holdConsumer(name);
    return taken !== null;
  }, 10_000);
  return taken!;
}

/** A deposed lease's save, further on: refused with ConsumerError, the lease lost, `fenced` still at `stored`. */
async function expectSaveRefused(
  url: string,
  log: string,
  lease: ConsumerLease,
  stored: number,
): Promise<void> {
  const refused = await lease.save({ name: 'fenced', position: 9, parked: [] }).then(
    () => null,
    (err: unknown) => err,
  );
  expect(refused).toBeInstanceOf(ConsumerError);
  expect((refused as Error).message).toMatch(/no longer holds it/);
  expect(lease.held).toBe(false);
  const { rows } = await admin(
    url,
    'SELECT position::int AS p FROM appendonly.consumers WHERE log = $1 AND name = $2',
    [log, 'fenced'],
  );
  expect(rows[0].p).toBe(stored);
}

describe('PostgresStore: one instance at a time holds a consumer name', () => {
  const server = usePostgres();
  const open = useApps();
  const spawn = useChildren(path.join(__dirname, 'child/consumer-holder.ts'));
  let url = '';
  let dir = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-holder-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Executes `n` commands, a few ms apart, so that events keep coming while holders change. */
  async function flow(app: Awaited<ReturnType<typeof open>>['app'], n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await app.execute(new Increment('c'));
      if (i % 4 === 0) await new Promise((resolve) => setTimeout(resolve, 3));
    }
  }

  /** A log of 40 events, holder A running `recorder` on it, then standby B subscribing the same name. */
  async function holderAndStandby(log: string) {
    const writer = (await open(url, log)).app;
    for (let i = 0; i < 40; i++) await writer.execute(new Increment('c'));
    const record = path.join(dir, 'record');
    const a = spawn([url, log, 'A', record]);
    await status(a, ['catching-up', 'live']);
    const b = spawn([url, log, 'B', record]);
    await status(b, ['standby']);
    return { writer, record, a, b };
  }

  it('hands over to the standby when the holder is killed: every event handled, in order, none skipped', async () => {
    // given: a log with events, holder A running `recorder`, then B subscribing the same name
    const log = `holder-kill-${Date.now()}`;
    const { writer, record, a, b } = await holderAndStandby(log);
    // when: commands flow, and A is SIGKILLed once it has handled some of them
    const writing = flow(writer, 400);
    await eventually(() => handled(record).length >= 120, 30_000);
    a.process.kill('SIGKILL');
    await a.exited;
    await writing;
    const head = writer.stats().lastSeq;
    // then: B takes over and handles up to the head, after A, nothing skipped, its position stored
    await status(b, ['catching-up', 'live']);
    await expectTakenOver(url, log, record, head);
  }, 120_000);

  it("refuses a deposed holder's checkpoints: it stops handling, and the position is the new holder's", async () => {
    // given: holder A and standby B on one log, events flowing
    const log = 'holder';
    const { writer, record, a, b } = await holderAndStandby(log);
    const writing = flow(writer, 300);
    await eventually(() => handled(record).length >= 80, 30_000);
    // when: A's lock session is terminated by the server while A runs (A itself is alive)
    const pid = await lockHolderPid(url);
    expect(pid).not.toBeNull();
    const fromA = a.lines.length;
    await admin(url, 'SELECT pg_terminate_backend($1)', [pid]);
    // then: A stops handling (standby), B takes over and reaches the head
    await status(a, ['standby'], fromA);
    await status(b, ['catching-up', 'live']);
    await writing;
    const head = writer.stats().lastSeq;
    // A handled nothing once B had begun, and is back to waiting for the name
    await expectTakenOver(url, log, record, head);
    expect(a.lines.slice(fromA).some((l) => /no longer holds it/.test(l))).toBe(true);
    expect(a.lines.slice(fromA).at(-1)).toBe('status standby');
  }, 120_000);

  it("a deposed holder's reaction never commits: the epoch fences it in the append's transaction", async () => {
    // given: an instance whose consumer reacts to 'src' by incrementing 'reaction', its handler
    // held on the first event
    const log = `holder-react-${Date.now()}`;
    const { app } = await open(url, log);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let entered: () => void = () => {};
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    await app.subscribe('reactor', async (e) => {
      if ((e.event.data as { key?: string }).key !== 'src') return;
      entered();
      await held;
      return new Increment('reaction');
    });
    await app.execute(new Increment('src'));
    await inHandler;
    // when: the name's epoch moves on (a next holder's takeover) while nothing tells this one,
    // and then its handler returns the reaction
    await admin(url, 'UPDATE appendonly.consumer_leases SET epoch = epoch + 1 WHERE log = $1 AND name = $2', [
      log,
      'reactor',
    ]);
    release();
    // then: it notices it was deposed, and nothing of the reaction is in the log...
    await eventually(() => app.consumer('reactor')?.stats().status === 'standby', 30_000);
    const fresh = await open(url, log);
    expect(fresh.app.state.get('reaction')).toBeUndefined();
    // ...while its other commands still commit
    await app.execute(new Increment('other'));
    await fresh.app.sync();
    expect(fresh.app.state.get('other')).toBe(1);
    expect(fresh.app.state.get('reaction')).toBeUndefined();
  }, 60_000);

  it('a holder that has not noticed its deposition cannot move the position: the epoch fences its save', async () => {
    // given: a lease on a name, its session alive, with a stored position
    const log = `holder-epoch-${Date.now()}`;
    const store = await bareStore(url, log);
    try {
      const lease = await store.holdConsumer('fenced');
      expect(lease).not.toBeNull();
      await lease!.save({ name: 'fenced', position: 3, parked: [] });
      // when: the name's epoch moves on under it, as a next holder's takeover moves it, while
      // nothing tells this holder (its session and its lock are untouched)
      await admin(
        url,
        'UPDATE appendonly.consumer_leases SET epoch = epoch + 1 WHERE log = $1 AND name = $2',
        [log, 'fenced'],
      );
      // then: its next save, further on, is refused, moves nothing, and the lease is lost
      await expectSaveRefused(url, log, lease!, 3);
      // and its lock went with its session: another instance takes the name
      const other = await bareStore(url, log);
      try {
        await (await takeWhenFree(other, 'fenced')).release();
      } finally {
        await other.close();
      }
    } finally {
      await store.close();
    }
  }, 60_000);

  it('a lease whose session ended refuses to save, and moves nothing', async () => {
    // given: a lease on a name, with a stored position
    const log = `holder-lease-${Date.now()}`;
    const store = await bareStore(url, log);
    try {
      const lease = await store.holdConsumer('fenced');
      expect(lease).not.toBeNull();
      await lease!.save({ name: 'fenced', position: 1, parked: [] });
      // and another instance's attempt is refused while it is held
      const other = await bareStore(url, log);
      expect(await other.holdConsumer('fenced')).toBeNull();
      // when: its session is terminated, and the other instance takes the name and stores 2
      const { rows } = await admin(
        url,
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted
           AND classid::int = hashtext($1) AND objid::int = hashtext('fenced')`,
        [`appendonly consumer appendonly.${log}`],
      );
      await admin(url, 'SELECT pg_terminate_backend($1)', [rows[0].pid]);
      const taken = await takeWhenFree(other, 'fenced');
      await taken.save({ name: 'fenced', position: 2, parked: [] });
      // then: the deposed lease's save (further on) is refused and moves nothing
      await expectSaveRefused(url, log, lease!, 2);
      await taken.release();
      await other.close();
    } finally {
      await store.close();
    }
  }, 60_000);
});
