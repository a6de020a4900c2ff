import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeGroup, formatManifest, type ManifestEntry, RespEncoder } from '../../adapters/aof/index';
import { SqliteWalStore } from '../../adapters/sqlite-wal/index';
import { type EventGroup, type JsonValue, SET } from '../../src/index';
import { toReplayGroup } from '../../src/store/replay-batch';
import { fsyncDir, fsyncFile, replaceFile } from '../backup';
import { EXIT_INVALID, EXIT_OK, usage } from '../errors';
import { confirmChange, say } from '../output';
import { readRecords } from '../records';
import { toolContext } from '../stores';
import { resolveTarget } from '../target';

/**
 * `appendonly convert FROM TO [--yes]`: the same log in another store: the snapshot (AOF base, SQLite
 * snapshot table) and every command with its sequence numbers and time, so that a replay of the
 * target gives the state a replay of the source gives, and `cat` speaks of the same numbers.
 * TO is a `.db` file (SQLite-WAL) or a folder (AOF); it must not exist or be empty: the tool
 * never writes over a log.
 *
 * The AOF target is written with the store's encoder (a base of SET records with their #CRC,
 * then one incr file with a `#TS` wherever the second changes), the SQLite one through
 * SqliteWalStore itself: its compaction writes the snapshot, its appends the commands.
 */
export async function convert(
  fromArg: string,
  toArg: string,
  options: { yes?: boolean } = {},
): Promise<number> {
  const from = resolveTarget(fromArg);
  const to = path.resolve(toArg);
  const toSqlite = to.endsWith('.db') || (fs.existsSync(to) && fs.statSync(to).isFile());
  assertEmpty(to, toArg, toSqlite);
  const question = `This will write ${toArg} (${toSqlite ? 'sqlite-wal' : 'aof'}), a copy of the log in ${fromArg}. Continue?`;
  if (!(await confirmChange(options.yes, 'convert', 'convert', question))) return EXIT_INVALID;
  // The snapshot is kept in memory until the first command (an app holds the same state in memory).
  let snapshot: { seq: number; entries: Map<string, JsonValue> } | null = null;
  const sink = toSqlite ? await sqliteSink(to) : aofSink(to);
  let commands = 0;
  let lastSeq = 0;
  try {
    for await (const batch of readRecords(from, 'converting')) {
      for (const r of batch) {
        if (r.kind === 'snapshot') {
          snapshot = { seq: r.seq, entries: new Map() };
          lastSeq = r.seq;
        } else if (r.kind === 'entry') snapshot!.entries.set(r.key, r.value);
        else {
          if (snapshot !== null) {
            await sink.snapshot(snapshot.seq, snapshot.entries);
            snapshot = null;
          }
          const g = toReplayGroup(r);
          await sink.group(g);
          commands++;
          lastSeq = g.seq + g.events.length - 1;
        }
      }
    }
    if (snapshot !== null) await sink.snapshot(snapshot.seq, snapshot.entries);
    await sink.close();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  say(
    `converted ${fromArg} (${from.kind === 'aof' ? 'aof' : 'sqlite-wal'}) to ${toArg} (${toSqlite ? 'sqlite-wal' : 'aof'}): ${commands} commands, up to seq ${lastSeq}`,
  );
  return EXIT_OK;
}

function assertEmpty(to: string, toArg: string, toSqlite: boolean): void {
  if (!fs.existsSync(to)) return;
  const st = fs.statSync(to);
  if (toSqlite) {
    if (st.size > 0)
      throw usage(
        `${toArg}: exists and is not empty; refusing to overwrite it (convert writes to a new file)`,
      );
    return;
  }
  if (!st.isDirectory()) throw usage(`${toArg}: not a folder`);
  const names = fs.readdirSync(to);
  const log = path.join(to, 'appendonlydir');
  if (names.length > 0 && (!fs.existsSync(log) || fs.readdirSync(log).length > 0)) {
    throw usage(
      `${toArg}: the folder is not empty; refusing to write a log into it (convert writes to a new folder)`,
    );
  }
}

interface Sink {
  snapshot(seq: number, entries: Map<string, JsonValue>): Promise<void>;
  group(g: EventGroup): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

async function sqliteSink(file: string): Promise<Sink> {
  const store = new SqliteWalStore({ file, appendfsync: 'no', autoRewritePercentage: 0 });
  let snap: { seq: number; entries: Map<string, JsonValue> } | null = null;
  await store.open(
    toolContext(() => ({
      seq: snap!.seq,
      size: snap!.entries.size,
      entries: () => snap!.entries.entries(),
      release: () => {},
    })),
  );
  let pending: Promise<void>[] = [];
  return {
    async snapshot(seq, entries) {
      snap = { seq, entries };
      await store.compact();
      snap = null;
    },
    async group(g) {
      pending.push(store.append(g));
      if (pending.length >= 1024) {
        await Promise.all(pending);
        pending = [];
      }
    },
    async close() {
      await Promise.all(pending);
      await store.close();
    },
    async abort() {
      await Promise.allSettled(pending);
      await store.close().catch(() => {});
      fs.rmSync(file, { force: true });
      fs.rmSync(`${file}-wal`, { force: true });
    },
  };
}

function aofSink(dir: string): Sink {
  const logDir = path.join(dir, 'appendonlydir');
  fs.mkdirSync(logDir, { recursive: true, mode: 0o700 });
  let base: ManifestEntry | null = null;
  let incr: { fd: number; entry: ManifestEntry } | null = null;
  const enc = new RespEncoder();
  let lastTs = -1;
  const flush = (fd: number) => {
    const bytes = enc.bytes();
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    enc.reset();
  };
  return {
    async snapshot(seq, entries) {
      base = { name: 'appendonly.aof.1.base.aof', seq: 1, type: 'b', lastSeq: seq };
      const fd = fs.openSync(path.join(logDir, base.name), 'w', 0o600);
      try {
        // A base record is the one-event group of a SET, with no #TS: the bytes AofStore's rewrite writes.
        for (const [key, value] of entries) {
          encodeGroup(enc, { seq, time: 0, events: [SET(key, value)] }, -1);
          if (enc.length >= 256 * 1024) flush(fd);
        }
        flush(fd);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    },
    async group(g) {
      if (incr === null) {
        const entry: ManifestEntry = {
          name: 'appendonly.aof.1.incr.aof',
          seq: 1,
          type: 'i',
          startSeq: g.seq,
        };
        incr = { fd: fs.openSync(path.join(logDir, entry.name), 'w', 0o600), entry };
      }
      const ts = g.time > 0 ? Math.floor(g.time / 1000) : -1;
      encodeGroup(enc, g, ts !== lastTs ? ts : -1);
      if (ts >= 0) lastTs = ts;
      if (enc.length >= 256 * 1024) flush(incr.fd);
    },
    async close() {
      const incrs: ManifestEntry[] = [];
      if (incr !== null) {
        flush(incr.fd);
        fs.fsyncSync(incr.fd);
        fs.closeSync(incr.fd);
        incrs.push(incr.entry);
      } else {
        // An empty incr file continues the base, as AofStore leaves one after a compaction.
        const entry: ManifestEntry = {
          name: 'appendonly.aof.1.incr.aof',
          seq: 1,
          type: 'i',
          startSeq: ((base as ManifestEntry | null)?.lastSeq ?? 0) + 1,
        };
        fs.closeSync(fs.openSync(path.join(logDir, entry.name), 'w', 0o600));
        fsyncFile(path.join(logDir, entry.name));
        incrs.push(entry);
      }
      replaceFile(path.join(logDir, 'appendonly.aof.manifest'), formatManifest({ base, incrs, history: [] }));
      fsyncDir(logDir);
    },
    async abort() {
      if (incr !== null) fs.closeSync(incr.fd);
      fs.rmSync(logDir, { recursive: true, force: true });
    },
  };
}
