import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersistenceError } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { admin, usePostgres } from '../support/postgres';
import { eventually, stateOf, useApps } from './helpers';

/** The database goes away under load; a connection dies between COMMIT and its answer. */
describe('PostgresStore: faults', () => {
  const server = usePostgres({ local: true });
  const open = useApps();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it('a database restart mid-load: the app refuses with PersistenceError, then resumes with the acknowledged history', async () => {
    // given: an app with 16 commands in flight at all times
    const { app } = await open(url, 'restart');
    const acked = new Set<number>();
    const errors: PersistenceError[] = [];
    let next = 0;
    let running = true;
    const worker = async () => {
      while (running) {
        const i = next++;
        try {
          await app.execute(new fixtures.Put(`k${i}`, i));
          acked.add(i);
        } catch (err) {
          if (err instanceof PersistenceError) errors.push(err);
          else throw err;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    await eventually(() => acked.size > 200);
    // when: pg_ctl restart cuts every connection
    await server().restart();
    await eventually(() => errors.length > 0 && app.stats().status === 'ready', 20_000);
    const afterRestart = acked.size;
    await eventually(() => acked.size > afterRestart + 100, 20_000);
    running = false;
    await Promise.all(workers);
    // then: the failure was a PersistenceError with the driver's code, the app came back, and
    // its state holds every acknowledged command and equals what a replay of the log gives
    expect(errors[0]).toBeInstanceOf(PersistenceError);
    expect(errors[0].code).not.toBe('EPERSISTENCE');
    const live = stateOf(app);
    for (const i of acked) expect(live[`k${i}`]).toBe(i);
    const replayed = await open(url, 'restart');
    expect(stateOf(replayed.app)).toEqual(live);
  }, 60_000);

  it('a connection lost after COMMIT, before its answer: the batch is neither lost nor logged twice', async () => {
    // given: the app reaches the server through a proxy that can drop the answer to one append
    const proxy = await answerDroppingProxy(new URL(url).searchParams.get('host')!);
    try {
      const proxied = new URL(url);
      proxied.searchParams.set('host', proxy.dir);
      const { app, store } = await open(proxied.toString(), 'lost-answer');
      await app.execute(new fixtures.Put('before', 1));
      // when: the answer to the next append is dropped, after the server committed it (the
      // append is a prepared statement: after its first run, only its name goes on the wire)
      proxy.dropNextAnswerTo('appendonly_append_');
      const result = await app.execute(new fixtures.Put('lost', 2));
      // then: it was acknowledged once found committed, logged once, and the log goes on
      expect(proxy.dropped).toBe(1);
      expect(result.firstSeq).toBe(2);
      expect(store.stats().recoveredBatches).toBe(1);
      await app.execute(new fixtures.Put('after', 3));
      const { rows } = await admin(
        url,
        'SELECT seq::int AS seq FROM appendonly.events WHERE log = $1 ORDER BY seq',
        ['lost-answer'],
      );
      expect(rows.map((r) => r.seq)).toEqual([1, 2, 3]);
      expect(stateOf(app)).toEqual({ before: 1, lost: 2, after: 3 });
    } finally {
      proxy.close();
    }
  });

  it('commits lost in a database crash (synchronous_commit off): after reconnecting, the instance refuses with ELOGLOST', async () => {
    // given: A committed seq 1 and 2; a crash then lost seq 2 (done here by hand), and B took seq 2 again
    const log = 'lost-commits';
    const a = await open(url, log, 'no');
    await a.app.execute(new fixtures.Put('a', 1));
    await a.app.execute(new fixtures.Put('b', 2));
    await admin(url, 'DELETE FROM appendonly.events WHERE log = $1 AND seq = 2', [log]);
    await admin(url, 'UPDATE appendonly.heads SET seq = 1 WHERE log = $1', [log]);
    const b = await open(url, log, 'no');
    await b.app.execute(new fixtures.Put('c', 3));
    // when: the database restarts, and A appends again
    await server().restart();
    const outcome = await a.app.execute(new fixtures.Put('d', 4)).catch((err: unknown) => err);
    // then: A does not go on from a state the log no longer has
    expect(outcome).toBeInstanceOf(PersistenceError);
    expect(outcome).toMatchObject({ code: 'ELOGLOST' });
    expect((outcome as Error).message).toMatch(/must reload/);
    const { rows } = await admin(url, 'SELECT data FROM appendonly.events WHERE log = $1 ORDER BY seq', [
      log,
    ]);
    expect(rows.map((r) => JSON.parse(r.data).key)).toEqual(['a', 'c']);
  });

  it('an unreachable server: open rejects with PersistenceError, its code kept, no password shown', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aopg-none-'));
    const { PostgresStore } = await import('appendonly/adapters/postgres');
    const store = new PostgresStore({
      connectionString: `postgresql://alice:s3cret-pw@localhost/db?host=${encodeURIComponent(dir)}`,
    });
    const opened = store.open({
      snapshots: { takeSnapshot: () => ({ seq: 0, size: 0, entries: () => [].values(), release: () => {} }) },
      logger: { info: () => {}, warn: () => {}, error: () => {} },
      clock: { now: Date.now },
    });
    await expect(opened).rejects.toBeInstanceOf(PersistenceError);
    const err = (await opened.catch((e: unknown) => e)) as PersistenceError;
    expect(err.code).toBe('ENOENT');
    expect(err.message).not.toContain('s3cret-pw');
    expect(JSON.stringify(store.stats())).not.toContain('s3cret-pw');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

/**
 * A Unix-socket proxy in front of the server: it forwards everything, except that once armed,
 * the first answer after a client message containing `marker` is swallowed and both sides of
 * that connection are cut: the server has run (and committed) the statement, the client never
 * hears of it.
 */
async function answerDroppingProxy(serverDir: string): Promise<{
  dir: string;
  dropped: number;
  dropNextAnswerTo(marker: string): void;
  close(): void;
}> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aopg-proxy-'));
  let marker: string | null = null;
  const state = { dropped: 0 };
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(path.join(serverDir, '.s.PGSQL.5432'));
    sockets.add(client).add(upstream);
    let armed = false;
    client.on('data', (chunk) => {
      if (marker !== null && chunk.includes(marker)) {
        marker = null;
        armed = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (armed) {
        state.dropped++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => proxy.listen(path.join(dir, '.s.PGSQL.5432'), resolve));
  return {
    dir,
    get dropped() {
      return state.dropped;
    },
    dropNextAnswerTo: (m) => {
      marker = m;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      proxy.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
