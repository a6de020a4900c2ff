import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type App, type AppliedEvent, type EventStore, KeyValueState, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';
import { logDir, openApp, tempDir } from './helpers';

const { Put, Count } = fixtures;

const INCR = 'appendonly.aof.1.incr.aof';

/** Runs the real redis-check-aof (Debian's redis-tools) on the log's manifest. */
function redisCheckAof(dir: string): { status: number | null; out: string } {
  const manifest = path.join(logDir(dir), 'appendonly.aof.manifest');
  const r = spawnSync('redis-check-aof', [manifest], { encoding: 'utf8' });
  if (r.error)
    throw new Error(`redis-check-aof could not run (apt-get install redis-tools): ${r.error.message}`);
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Reacts to each Counted with two commands: two SETs, one group. */
const react = (e: AppliedEvent) =>
  e.type === 'Counted' ? [new Put(`seen:${e.seq}`, e.seq), new Put('last', e.seq)] : undefined;

/** From now on the store refuses the consumer's own saves: only a reaction can move its position. */
function withoutCheckpoints(app: App): void {
  const store = (app as unknown as { store: EventStore }).store;
  Object.assign(store, { saveConsumer: () => Promise.reject(new Error('the process is gone')) });
}

async function position(store: AofStore, name: string): Promise<number | undefined> {
  return (await store.loadConsumers()).find((r) => r.name === name)?.position;
}

describe('AofStore reactions: the position inside the reaction’s MULTI', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  /** A log of one Counted (seq 1) and its reaction (seq 2-3), the consumer's own saves at 0. */
  async function logWithReaction(): Promise<{ full: Buffer; reactionAt: number }> {
    const { app } = await openApp({ dir, appendfsync: 'always' });
    await app.execute(new Count('n', 1));
    const reactionAt = fs.statSync(path.join(logDir(dir), INCR)).size;
    const sub = await app.subscribe('reactor', react, { from: 'start' });
    withoutCheckpoints(app);
    await sub.caughtUp();
    await app.close();
    return { full: fs.readFileSync(path.join(logDir(dir), INCR)), reactionAt };
  }

  it('writes the position as a @pos record inside the MULTI of the reaction, covered by its #CRC', async () => {
    // given / when
    const { full, reactionAt } = await logWithReaction();
    // then: @env (ids, time, metadata), MULTI, the two SETs, @pos reactor 1 0, EXEC, #CRC
    const text = full.subarray(reactionAt).toString('latin1');
    expect(text).toMatch(
      /^\*5\r\n\$4\r\n@env\r\n.*\*1\r\n\$5\r\nMULTI\r\n(\*3\r\n\$3\r\nSET\r\n.*){2}\*4\r\n\$4\r\n@pos\r\n\$7\r\nreactor\r\n\$1\r\n1\r\n\$1\r\n0\r\n\*1\r\n\$4\r\nEXEC\r\n#CRC:[0-9a-f]{8}\r\n$/s,
    );
    expect(redisCheckAof(dir).status).toBe(0);
    // and: a fresh store reports the position from the log, beyond its own file's 0
    const { app, store } = await openApp({ dir });
    expect(await position(store, 'reactor')).toBe(1);
    expect(app.state.get('last')).toBe(1);
    await app.close();
  });

  it('a reaction cut anywhere mid-write is dropped whole: no event of it, the position as before, redis-check-aof valid', async () => {
    // given
    const { full, reactionAt } = await logWithReaction();
    const incr = path.join(logDir(dir), INCR);
    for (let cut = reactionAt + 1; cut < full.length; cut += 5) {
      // when: the file ends `cut` bytes in, as a crash during the write leaves it
      fs.writeFileSync(incr, full.subarray(0, cut));
      const { app, store } = await openApp({ dir });
      // then: the repair cut the whole reaction: its events and its position are both gone
      expect(app.stats().lastSeq).toBe(1);
      expect(app.state.has('seen:1')).toBe(false);
      expect(await position(store, 'reactor')).toBe(0);
      await app.close();
      expect(fs.statSync(incr).size).toBe(reactionAt);
      const checked = redisCheckAof(dir);
      expect(checked.out).toContain('All AOF files and manifest are valid');
      expect(checked.status).toBe(0);
    }
  });

  it('compaction keeps the positions of the files it drops in the consumers’ file', async () => {
    // given: a reaction whose position is in the log only
    await logWithReaction();
    const { app, store } = await openApp({ dir, appendfsync: 'always' });
    // when: a compaction replaces the incr file that holds the @pos record
    await app.compact();
    await app.close();
    // then: the consumers' file holds the position itself (the replaced file may be kept for the
    // consumer's unhandled events, or not), and it stands after a reopen
    const file = JSON.parse(fs.readFileSync(path.join(logDir(dir), 'appendonly-consumers.json'), 'utf8')) as {
      consumers: { name: string; position: number }[];
    };
    expect(file.consumers.find((c) => c.name === 'reactor')?.position).toBe(1);
    const again = await openApp({ dir });
    expect(await position(again.store, 'reactor')).toBe(1);
    expect(store).not.toBe(again.store);
    await again.app.close();
  });

  it('a position moved back by a save, or a record made again after a delete, is not moved forward by older @pos records', async () => {
    // given: three reactions whose positions are in the log only (1, 2, 3)
    let { app, store } = await openApp({ dir, appendfsync: 'always' });
    for (let i = 0; i < 3; i++) await app.execute(new Count('n', 1));
    const sub = await app.subscribe('reactor', react, { from: 'start' });
    withoutCheckpoints(app);
    await sub.caughtUp();
    await app.close();
    // when: a tool's store (no replay) moves the position back, as truncate's clamp does
    const tool = new AofStore({ dir });
    const kv = new KeyValueState();
    await tool.open({
      snapshots: { takeSnapshot: () => kv.takeSnapshot(0) },
      logger: silentLogger,
      clock: { now: Date.now },
    });
    expect(await position(tool, 'reactor')).toBe(3);
    await tool.saveConsumer({ name: 'reactor', position: 1, parked: [] });
    await tool.close();
    // then: a fresh app resumes after 1, not 3
    ({ app, store } = await openApp({ dir }));
    expect(await position(store, 'reactor')).toBe(1);
    // and: removed and made again, it starts where it is told, not where the log's reactions were
    await app.removeConsumer('reactor');
    const fresh = await app.subscribe('reactor', () => {}, { from: { after: 2 } });
    await fresh.close();
    await app.close();
    ({ app, store } = await openApp({ dir }));
    expect(await position(store, 'reactor')).toBe(2);
    await app.close();
  });
});
