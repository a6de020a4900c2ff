import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PersistenceError } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { recordingLogger } from '../support/helpers';
import { admin, usePostgres } from '../support/postgres';
import {
  type Acked,
  ackedPuts,
  ask,
  eventually,
  logShape,
  loseCommitsAfter,
  missing,
  stateOf,
  useApps,
  useWorkers,
} from './helpers';

/** The database goes away under load; a connection dies between COMMIT and its answer. */
describe('PostgresStore: faults', () => {
  const server = usePostgres({ local: true });
  const open = useApps();
  const spawn = useWorkers();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it('a database restart while three processes write: each refuses with PersistenceError, recovers by itself and goes on; nothing acknowledged is lost', async () => {
    // given: three processes writing, 16 commands in flight each
    const log = 'restart';
    const writers = [1, 2, 3].map((id) => spawn(url, log, id, 'retry-write'));
    await Promise.all(writers.map((w) => w.waitFor(/^ack /, 50)));
    // when: pg_ctl restart cuts every connection
    const before = writers.map((w) => w.lines.length);
    await server().restart();
    // then: each had commands refused with a PersistenceError naming the log and what failed, its
    // code the driver's (57P01, 57P03, EPIPE…; ECONNRESET for pg's code-less "Connection
    // terminated unexpectedly"), never the catch-all EPERSISTENCE
    const refused = await Promise.all(writers.map((w, i) => w.waitFor(/^refused /, before[i])));
    for (const line of refused) {
      expect(line).toMatch(/^refused \d+ \w+ cannot (append to|read) postgresql:\S+ appendonly\.restart: \w/);
      expect(line).not.toMatch(/^refused \d+ EPERSISTENCE /);
    }
    // each came back by itself and writes again: 50 acknowledgements after its first refusal
    await Promise.all(writers.map((w, i) => w.waitFor(/^ack /, w.lines.indexOf(refused[i]) + 50)));
    await Promise.all(writers.map((w) => ask<Acked>(w, 'stop', 'stopped')));
    // they agree, a replay of the log gives their state, and it holds every acknowledged command
    const states = await Promise.all(writers.map((w) => ask(w, 'sync', 'state')));
    expect(states[1]).toEqual(states[0]);
    expect(states[2]).toEqual(states[0]);
    const replayed = await open(url, log);
    expect(stateOf(replayed.app)).toEqual(states[0]);
    const acked = new Map(writers.flatMap((w, i) => [...ackedPuts(w, i + 1)]));
    expect(missing(states[0], acked)).toEqual([]);
    // and the log is dense: the restart lost no seq and gave none twice
    const shape = await logShape(url, log);
    expect(shape).toMatchObject({ min: 1, max: shape.n });
    expect(replayed.app.stats().lastSeq).toBe(shape.max);
  }, 120_000);

  it('a connection lost after COMMIT, before its answer: the batch is neither lost nor logged twice', async () => {
    // given: the app reaches the server through a proxy that can drop the answer to one append
    const proxy = await faultyProxy(new URL(url).searchParams.get('host')!);
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

  it('a connection cut on the client side only, its server process left in the head lock: the next append ends that process first, and no instance waits on it', async () => {
    // given: A reaches the server through a proxy, B directly; B appended first, so A's next
    // command conflicts and its catch-up locks the head row
    const proxy = await faultyProxy(new URL(url).searchParams.get('host')!);
    try {
      const proxied = new URL(url);
      proxied.searchParams.set('host', proxy.dir);
      const log = 'orphaned-lock';
      const a = await open(proxied.toString(), log);
      const b = await open(url, log);
      await a.app.execute(new fixtures.Put('a', 1));
      await b.app.execute(new fixtures.Put('b', 1));
      // when: the answer to that lock is lost and only A's side of the connection is cut: its
      // server process holds the head row, idle in its transaction, and nothing ends it
      proxy.orphanNextAnswerTo('FOR UPDATE OF h');
      await a.app.execute(new fixtures.Put('a', 2)).catch(() => {});
      expect(proxy.dropped).toBe(1);
      // then: A's next command goes through (its new connection ended the old process first),
      // and B, which waits on the same row, is not held either
      await eventually(
        () =>
          a.app.execute(new fixtures.Put('a', 3)).then(
            () => true,
            () => false,
          ),
        20_000,
      );
      await b.app.execute(new fixtures.Put('b', 2));
      await b.app.sync();
      await a.app.sync();
      expect(stateOf(a.app)).toEqual(stateOf(b.app));
      expect(stateOf(b.app)).toMatchObject({ a: 3, b: 2 });
    } finally {
      proxy.close();
    }
  }, 60_000);

  it('a connection the server ends as it is made (FATAL with its ReadyForQuery): open refuses with PersistenceError, nothing uncaught, the next open works', async () => {
    // given: the app reaches the server through a proxy that ends the next connection made
    // right behind the server's ReadyForQuery, in the same read, as a shutting-down server does
    const proxy = await faultyProxy(new URL(url).searchParams.get('host')!);
    try {
      const proxied = new URL(url);
      proxied.searchParams.set('host', proxy.dir);
      proxy.endNextAsReady();
      // when: a store opens (its first connection is that one)
      const refused = await open(proxied.toString(), 'ended-as-made').then(
        () => null,
        (err: unknown) => err,
      );
      // then: the open is refused with the driver's code, not an uncaught 'error' event that
      // would end the process; and the next open, on a healthy connection, works
      expect(refused).toBeInstanceOf(PersistenceError);
      const { app } = await open(proxied.toString(), 'ended-as-made');
      await app.execute(new fixtures.Put('k', 1));
      expect(stateOf(app)).toEqual({ k: 1 });
    } finally {
      proxy.close();
    }
  });

  it('commits lost in a database crash (synchronous_commit off): the writer and a follower reload the log as it is', async () => {
    // given: A committed seq 1 and 2, and follower F applied both; a crash then lost seq 2
    // (done here by hand, as the WAL writer would have lost it), and B took seq 2 again
    const log = 'lost-commits';
    const aLog = recordingLogger();
    const fLog = recordingLogger();
    const a = await open(url, log, 'no', aLog);
    const f = await open(url, log, 'no', fLog);
    await a.app.execute(new fixtures.Put('a', 1));
    await a.app.execute(new fixtures.Put('b', 2));
    await f.app.sync();
    expect(stateOf(f.app)).toEqual({ a: 1, b: 2 });
    await loseCommitsAfter(url, log, 1);
    const b = await open(url, log, 'no');
    await b.app.execute(new fixtures.Put('c', 3));
    // when: the database restarts (every connection is cut), and A goes on writing
    await server().restart();
    const refusals: unknown[] = [];
    let written = false;
    await eventually(async () => {
      written = await a.app.execute(new fixtures.Put('d', 4)).then(
        () => true,
        (err: unknown) => {
          refusals.push(err);
          return false;
        },
      );
      return written;
    }, 20_000);
    // then: A went on from the log as it is, never from the state it had; a command refused
    // meanwhile was refused with LogLostError (a PersistenceError) and not logged
    for (const err of refusals) expect(err).toBeInstanceOf(PersistenceError);
    const { rows } = await admin(url, 'SELECT data FROM appendonly.events WHERE log = $1 ORDER BY seq', [
      log,
    ]);
    expect(rows.map((r) => JSON.parse(r.data).key)).toEqual(['a', 'c', 'd']);
    expect(stateOf(a.app)).toEqual({ a: 1, c: 3, d: 4 });
    expect(aLog.lines.some((l) => /warn: .*seq 2.*no longer in the log.*reloading/.test(l))).toBe(true);
    // and the follower, which wrote nothing, noticed after reconnecting and reloaded too
    await eventually(async () => {
      await f.app.sync().catch(() => {});
      return JSON.stringify(stateOf(f.app)) === JSON.stringify({ a: 1, c: 3, d: 4 });
    }, 20_000);
    expect(fLog.lines.some((l) => /warn: .*seq 2.*no longer in the log.*reloading/.test(l))).toBe(true);
    expect(f.app.stats()).toMatchObject({ status: 'ready', lastSeq: 3, lag: 0 });
  }, 60_000);

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
 * A Unix-socket proxy in front of the server: it forwards everything, except, once armed, for
 * one fault. `dropNextAnswerTo`: the first answer after a client message containing `marker` is
 * swallowed and both sides of that connection are cut: the server has run (and committed) the
 * statement, the client never hears of it. `endNextAsReady`: the next connection made gets the
 * server's ReadyForQuery and, in the same write, a FATAL 57P01 (what a server shutting down
 * sends a session that has just started), then both sides are cut.
 */
async function faultyProxy(serverDir: string): Promise<{
  dir: string;
  dropped: number;
  dropNextAnswerTo(marker: string): void;
  /**
   * As `dropNextAnswerTo`, but only the client's side is cut: the server's stays open, as
   * after a proxy's reset or a partition, so its process lives on (in its transaction).
   */
  orphanNextAnswerTo(marker: string): void;
  endNextAsReady(): void;
  close(): void;
}> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aopg-proxy-'));
  let marker: string | null = null;
  let orphan = false;
  let endAsReady = false;
  const state = { dropped: 0 };
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(path.join(serverDir, '.s.PGSQL.5432'));
    sockets.add(client).add(upstream);
    let armed = false;
    let orphaned = false;
    const endThis = endAsReady;
    endAsReady = false;
    client.on('data', (chunk) => {
      if (marker !== null && chunk.includes(marker)) {
        marker = null;
        armed = true;
        orphaned = orphan;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (endThis && chunk.includes(READY_FOR_QUERY)) {
        client.end(Buffer.concat([chunk, ADMIN_SHUTDOWN]));
        upstream.destroy();
        return;
      }
      if (armed) {
        if (!orphaned || !client.destroyed) state.dropped++;
        client.destroy();
        if (!orphaned) upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      if (!orphaned) upstream.destroy();
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
      orphan = false;
    },
    orphanNextAnswerTo: (m) => {
      marker = m;
      orphan = true;
    },
    endNextAsReady: () => {
      endAsReady = true;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      proxy.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The backend's ReadyForQuery, idle: 'Z', length 5, 'I'. */
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);

/** An ErrorResponse FATAL 57P01 admin_shutdown, as a server shutting down sends it. */
const ADMIN_SHUTDOWN = (() => {
  const fields = Buffer.from(
    'SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0',
    'utf8',
  );
  const head = Buffer.from([0x45, 0, 0, 0, 0]);
  head.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
})();
