import * as fs from 'node:fs';
import * as path from 'node:path';
import { assertAofValid } from '../aof-valid';
import { walkIncrs } from '../aof-walk';
import { backupAof, saveManifest } from '../backup';
import { EXIT_INVALID, EXIT_OK, invalid, parseCount, usage } from '../errors';
import { confirmChange, say } from '../output';
import { backupSqlite, lockSqlite } from '../sqlite-tools';
import { withStoreLocked } from '../stores';
import { type AofTarget, resolveTarget, type SqliteTarget } from '../target';

/** Options of `appendonly truncate`: exactly one of them. */
export interface TruncateOptions {
  readonly toSeq?: string;
  readonly toTimestamp?: string;
  /** Do not ask for confirmation. */
  readonly yes?: boolean;
}

type Point = { readonly seq: number } | { readonly ts: number };

/**
 * `appendonly truncate PATH --to-seq N | --to-timestamp T [--yes]`: point-in-time recovery. Keeps every
 * command up to the point and drops the rest, whole commands only. `--to-timestamp` cuts, as
 * redis-check-aof's `--truncate-to-timestamp`, at the first `#TS` annotation later than T; a log
 * written without `aofTimestamps` has none, and that is said rather than guessed. Unlike Redis,
 * the cut may fall in any incr file: the files after it leave the manifest (they are in the backup).
 */
export async function truncate(pathArg: string, options: TruncateOptions): Promise<number> {
  if ((options.toSeq === undefined) === (options.toTimestamp === undefined)) {
    throw usage('truncate: give exactly one of --to-seq N or --to-timestamp T');
  }
  const point: Point =
    options.toSeq !== undefined
      ? { seq: parseCount(options.toSeq, '--to-seq') }
      : { ts: parseCount(options.toTimestamp!, '--to-timestamp') };
  const target = resolveTarget(pathArg);
  return target.kind === 'aof'
    ? truncateAof(target, point, options.yes)
    : truncateSqlite(target, point, options.yes);
}

async function truncateAof(target: AofTarget, point: Point, yes: boolean | undefined): Promise<number> {
  await assertAofValid(target, 'truncate the log');
  const baseSeq = target.manifest.base?.lastSeq ?? 0;
  if ('seq' in point && point.seq < baseSeq) {
    throw invalid(
      `seq ${point.seq} is before the base (${target.manifest.base!.name} covers up to seq ${baseSeq}): ` +
        'the commands before it were compacted away; restore an older backup or history/',
    );
  }
  let cut: { index: number; offset: number; seq: number } | null = null;
  let sawTs = false;
  let lastSeq = baseSeq;
  for await (const { index, group } of walkIncrs(target.files)) {
    const end = group.seq + group.records.length - 1;
    if (group.ts !== null) sawTs = true;
    if (cut === null) {
      if ('seq' in point) {
        if (group.seq > point.seq) cut = { index, offset: group.start, seq: group.seq };
        else if (end > point.seq) {
          throw usage(
            `seq ${point.seq} is inside a command (seqs ${group.seq} to ${end}, applied all or none): ` +
              `use --to-seq ${group.seq - 1} or --to-seq ${end}`,
          );
        }
      } else if (group.ts !== null && group.ts > point.ts) {
        cut = { index, offset: group.start, seq: group.seq };
      }
    }
    lastSeq = end;
  }
  if ('ts' in point && !sawTs) {
    throw invalid(
      'the log has no #TS annotations (it was written without aofTimestamps: true), so it cannot be cut by time; ' +
        'find the sequence number with `appendonly cat` and use --to-seq',
    );
  }
  if (cut === null) {
    say(`nothing to cut: the log ends at seq ${lastSeq}, before the point`);
    return EXIT_OK;
  }
  const c = cut;
  const file = target.files[c.index];
  const dropped = target.files.slice(c.index + 1).map((f) => f.name);
  const question =
    `This will drop seq ${c.seq}..${lastSeq}: ${file.name} cut at byte offset ${c.offset}` +
    `${dropped.length > 0 ? `, ${dropped.join(', ')} removed` : ''} (a backup is kept). Continue?`;
  if (!(await confirmChange(yes, 'truncate', 'truncate', question))) return EXIT_INVALID;
  await withStoreLocked(target, 'truncate the log', async () => {
    backupAof(target, 'truncate', [file.name, ...dropped]);
    // The file is cut in place: the bytes before the cut are never rewritten.
    const fd = fs.openSync(file.path, 'r+');
    try {
      fs.ftruncateSync(fd, c.offset);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (dropped.length > 0) {
      const keep = new Set(target.files.slice(0, c.index + 1).map((f) => f.name));
      saveManifest(target, {
        ...target.manifest,
        incrs: target.manifest.incrs.filter((e) => keep.has(e.name)),
      });
      for (const name of dropped) fs.unlinkSync(path.join(target.logDir, name));
    }
  });
  say(
    `truncated the log before seq ${c.seq}: kept up to seq ${c.seq - 1}, dropped seq ${c.seq}..${lastSeq}` +
      ` (${file.name} cut at byte offset ${c.offset}${dropped.length > 0 ? `; removed ${dropped.join(', ')}` : ''})`,
  );
  return EXIT_OK;
}

async function truncateSqlite(target: SqliteTarget, point: Point, yes: boolean | undefined): Promise<number> {
  const db = lockSqlite(target.file, 'truncate the store');
  try {
    const snapshotSeq = Number(
      db.prepare("SELECT value FROM meta WHERE key = 'snapshot_seq'").pluck().get() ?? 0,
    );
    const lastSeq = Number(db.prepare('SELECT max(seq) FROM events').pluck().get() ?? snapshotSeq);
    let from: number | null;
    if ('seq' in point) {
      if (point.seq < snapshotSeq) {
        throw invalid(
          `seq ${point.seq} is before the snapshot (it covers up to seq ${snapshotSeq}): the commands before it were compacted away`,
        );
      }
      const row = db.prepare('SELECT seq, n FROM events WHERE seq = ?').get(point.seq + 1) as
        | { seq: number; n: number }
        | undefined;
      if (row !== undefined && row.n === 0) {
        const head = db
          .prepare('SELECT seq, n FROM events WHERE seq <= ? AND n > 0 ORDER BY seq DESC LIMIT 1')
          .get(point.seq) as {
          seq: number;
          n: number;
        };
        throw usage(
          `seq ${point.seq} is inside a command (seqs ${head.seq} to ${head.seq + head.n - 1}, applied all or none): ` +
            `use --to-seq ${head.seq - 1} or --to-seq ${head.seq + head.n - 1}`,
        );
      }
      from = row === undefined ? null : point.seq + 1;
    } else {
      const timed = Number(db.prepare('SELECT count(*) FROM events WHERE time > 0').pluck().get());
      if (timed === 0 && lastSeq > snapshotSeq)
        throw invalid('the store holds no event times, so it cannot be cut by time; use --to-seq');
      from =
        (db
          .prepare('SELECT min(seq) FROM events WHERE n > 0 AND time > ? AND seq > ?')
          .pluck()
          .get(point.ts * 1000, snapshotSeq) as number | null) ?? null;
    }
    if (from === null || from > lastSeq) {
      say(`nothing to cut: the store ends at seq ${lastSeq}, before the point`);
      return EXIT_OK;
    }
    const question = `This will drop seq ${from}..${lastSeq} from ${target.file} (a backup is kept). Continue?`;
    if (!(await confirmChange(yes, 'truncate', 'truncate', question))) return EXIT_INVALID;
    await backupSqlite(db, target.file, 'truncate');
    db.prepare('DELETE FROM events WHERE seq >= ?').run(from);
    say(`truncated the store before seq ${from}: dropped seq ${from}..${lastSeq}`);
    return EXIT_OK;
  } finally {
    db.close();
  }
}
