import 'reflect-metadata';
import * as path from 'node:path';
import { type App, createApp, PersistenceError, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { type Fault, FaultyFileSystem } from '../aof/faulty-fs';
import { type Cmd, modelOf, sleep, stateOf, tempDir, toCommand } from './support';

/*
 * Full disk and I/O errors, end to end, one scenario for both stores (write failures). A
 * workload keeps 64 commands in flight; mid-way a fault is injected (AOF: the injected
 * FileSystem; SQLite: PRAGMA max_page_count) and lasts past the App's first automatic retry.
 * Then: every command not yet durable rejected with PersistenceError and the fault's code, the
 * acknowledged ones are exactly a prefix of those sent (no hole), the app refused writes while
 * the fault lasted ('failed'), took them again BY ITSELF once it cleared (no recover() call
 * here), and the state, live and after close + reopen, is exactly the model fed only the
 * acknowledged commands. A fault that hits only a compaction (a failing rename) must instead
 * leave every command acknowledged and the app ready. test/aof/fault.test.ts and
 * test/sqlite-wal/fault.test.ts prove the details per store; this is the cross-store whole.
 */

const IN_FLIGHT = 64;
const FAULT_AFTER = 150;

/** A store under a fault that can be switched on and off. */
interface Rig {
  readonly app: App;
  inject(): void;
  heal(): void;
  reopen(): Promise<App>;
}

interface Case {
  readonly policy: 'always' | 'everysec';
  /** The PersistenceError code the fault gives. */
  readonly code: string;
  /** false: the fault only hits a compaction, started with it. */
  readonly hitsCommands: boolean;
  /** Start a compaction when the fault is injected. */
  readonly compact?: boolean;
  readonly rig: (dir: string, policy: Case['policy']) => Promise<Rig>;
}

const conformance = fixtures.conformanceClasses;

function aof(faults: Fault[]): Case['rig'] {
  return async (dir, appendfsync) => {
    const ffs = new FaultyFileSystem();
    const app = await createApp({
      ...conformance,
      store: new AofStore({ dir, appendfsync, fs: ffs }),
      logger: silentLogger,
    });
    return {
      app,
      inject: () => {
        for (const f of faults) ffs.inject({ ...f });
      },
      heal: () => ffs.heal(),
      reopen: () => createApp({ ...conformance, store: new AofStore({ dir }), logger: silentLogger }),
    };
  };
}

const sqlite: Case['rig'] = async (dir, appendfsync) => {
  const file = path.join(dir, 'app.db');
  const store = new SqliteWalStore({ file, appendfsync });
  const app = await createApp({ ...conformance, store, logger: silentLogger });
  const db = store.database;
  return {
    app,
    // The database may grow by 3 pages more, then every write fails with SQLITE_FULL.
    inject: () => db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true })) + 3}`),
    heal: () => db.pragma('max_page_count = 1073741823'),
    reopen: () => createApp({ ...conformance, store: new SqliteWalStore({ file }), logger: silentLogger }),
  };
};

const forever = Number.POSITIVE_INFINITY;
const cases: [string, Case][] = [
  [
    'AofStore always: ENOSPC on write',
    {
      policy: 'always',
      code: 'ENOSPC',
      hitsCommands: true,
      rig: aof([{ op: 'write', code: 'ENOSPC', match: /incr/, times: forever }]),
    },
  ],
  [
    'AofStore always: EIO on fsync',
    {
      policy: 'always',
      code: 'EIO',
      hitsCommands: true,
      rig: aof([{ op: 'fdatasync', code: 'EIO', match: /incr/, times: forever }]),
    },
  ],
  [
    'AofStore always: a short write, then EIO',
    {
      policy: 'always',
      code: 'EIO',
      hitsCommands: true,
      rig: aof([
        { op: 'write', code: '', short: 7, match: /incr/ },
        { op: 'write', code: 'EIO', match: /incr/, times: forever },
      ]),
    },
  ],
  [
    'AofStore everysec: ENOSPC on write',
    {
      policy: 'everysec',
      code: 'ENOSPC',
      hitsCommands: true,
      rig: aof([{ op: 'write', code: 'ENOSPC', match: /incr/, times: forever }]),
    },
  ],
  [
    'AofStore always: ENOSPC on write during a compaction',
    {
      policy: 'always',
      code: 'ENOSPC',
      hitsCommands: true,
      compact: true,
      rig: aof([{ op: 'write', code: 'ENOSPC', times: forever }]),
    },
  ],
  [
    'AofStore always: a failing rename during a compaction (commands unaffected)',
    {
      policy: 'always',
      code: 'EIO',
      hitsCommands: false,
      compact: true,
      rig: aof([{ op: 'rename', code: 'EIO', match: /manifest/, times: forever }]),
    },
  ],
  [
    'SqliteWalStore always: SQLITE_FULL',
    { policy: 'always', code: 'SQLITE_FULL', hitsCommands: true, rig: sqlite },
  ],
  [
    'SqliteWalStore everysec: SQLITE_FULL',
    { policy: 'everysec', code: 'SQLITE_FULL', hitsCommands: true, rig: sqlite },
  ],
  [
    'SqliteWalStore always: SQLITE_FULL during a compaction',
    { policy: 'always', code: 'SQLITE_FULL', hitsCommands: true, compact: true, rig: sqlite },
  ],
];

/** The i-th command of the workload: a fixed pseudo-random mix, so that a failure replays. */
function command(i: number): Cmd {
  const r = (Math.imul(i + 1, 2654435761) >>> 0) % 1000;
  const k = (n: number) => `k${(r * 7 + n) % 40}`;
  if (r < 450) return { kind: 'put', key: k(0), value: `${'v'.repeat(120)}${i}` };
  if (r < 700)
    return {
      kind: 'putMany',
      entries: [
        [k(0), i],
        [k(1), { i, pad: 'p'.repeat(80) }],
        [k(2), null],
      ],
    };
  if (r < 850) return { kind: 'remove', keys: [k(3)] };
  return { kind: 'count', key: 'n', by: (r % 9) - 4 };
}

/** The commands sent and what became of them. */
class Workload {
  sent = 0;
  readonly acked: number[] = [];
  readonly rejected: { i: number; err: unknown }[] = [];

  /** Keeps IN_FLIGHT commands in flight until `stop()`; `onAck` runs at each acknowledgement. */
  async flow(app: App, stop: () => boolean, onAck: () => void = () => {}): Promise<void> {
    const worker = async (): Promise<void> => {
      while (!stop() && this.sent < 100_000) {
        const i = this.sent++;
        try {
          await app.execute(toCommand(command(i)));
          this.acked.push(i);
          onAck();
        } catch (err) {
          this.rejected.push({ i, err });
          await sleep(1); // a refusing app answers at once: give the event loop its turn
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  }

  /** The model's state after the acknowledged commands, in the order they were sent. */
  model(): ReturnType<typeof modelOf> {
    return modelOf([...this.acked].sort((a, b) => a - b).map(command));
  }
}

describe.each(cases)('full disk and I/O errors, end to end: %s', (_name, c) => {
  it('rejects what is not durable, refuses while the fault lasts, takes writes again by itself, and reopens to exactly the acknowledged history', async () => {
    const { dir, cleanup } = tempDir('disk-faults');
    const w = new Workload();
    let rig: Rig | undefined;
    try {
      rig = await c.rig(dir, c.policy);
      const { app } = rig;
      let injected = -1;
      let compaction: Promise<unknown> | null = null;
      let compactionDone = false;
      const inject = () => {
        if (injected >= 0 || w.acked.length < FAULT_AFTER) return;
        injected = w.sent; // commands sent from here on may meet the fault
        rig!.inject();
        if (c.compact) compaction = app.compact().finally(() => (compactionDone = true));
      };
      const faulted = () => injected >= 0 && w.rejected.length > 0 && app.status === 'failed';
      const compacted = () => compactionDone && w.acked.length >= FAULT_AFTER + 2 * IN_FLIGHT;
      await w.flow(app, c.hitsCommands ? faulted : compacted, inject);
      expect(injected).toBeGreaterThanOrEqual(0);
      const compactionResult =
        compaction === null
          ? null
          : await (compaction as Promise<unknown>).then(
              () => 'ok',
              (e: unknown) => e,
            );

      if (c.hitsCommands) {
        // Every rejection is the fault's PersistenceError; the acknowledged commands are a prefix of those sent.
        expect(w.rejected.length).toBeGreaterThan(0);
        for (const { err } of w.rejected) {
          expect(err).toBeInstanceOf(PersistenceError);
          expect((err as PersistenceError).code).toBe(c.code);
        }
        const firstRejected = Math.min(...w.rejected.map((r) => r.i));
        expect(w.acked.length).toBe(firstRejected);
        expect(Math.max(...w.acked)).toBe(firstRejected - 1);
        // While the fault lasts, past the App's first retry (1 s), it stays failed and refuses.
        expect(app.status).toBe('failed');
        await sleep(1300);
        expect(app.status).toBe('failed');
        await expect(app.execute(toCommand(command(0)))).rejects.toMatchObject({
          name: 'PersistenceError',
          code: c.code,
        });
        // Cleared: the App's own retry makes the log writable again, and reloads the log.
        rig.heal();
        const healed = Date.now();
        while (app.status !== 'ready' && Date.now() - healed < 5000) await sleep(20);
        expect(app.status).toBe('ready');
        expect(stateOf(app)).toEqual(w.model());
        process.stdout.write(
          `${_name}: ${w.acked.length} acknowledged, ${w.rejected.length} rejected (${c.code}), writable again ${Date.now() - healed} ms after the fault cleared\n`,
        );
      } else {
        // A compaction fault is the compaction's alone: it fails, every command goes through.
        expect(compactionResult).toMatchObject({ code: c.code });
        expect(w.rejected).toEqual([]);
        expect(app.status).toBe('ready');
        rig.heal();
        await app.compact();
      }
      if (compactionResult !== null && compactionResult !== 'ok')
        expect(compactionResult).toBeInstanceOf(Error);

      // Healthy again: commands flow, none refused, and the log holds exactly what was acknowledged.
      const before = w.acked.length;
      const rejectedBefore = w.rejected.length;
      await w.flow(app, () => w.acked.length >= before + 2 * IN_FLIGHT);
      expect(w.rejected.length).toBe(rejectedBefore);
      expect(stateOf(app)).toEqual(w.model());
      await app.close();
      const reopened = await rig.reopen();
      expect(stateOf(reopened)).toEqual(w.model());
      await reopened.close();
    } finally {
      await rig?.app.close().catch(() => {});
      cleanup();
    }
  }, 30_000);
});
