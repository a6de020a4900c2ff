import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import type { Manifest, ManifestEntry } from '../../adapters/aof/index';
import { assertAofValid } from '../aof-valid';
import { type WalkGroup, walkFile, walkIncrs } from '../aof-walk';
import { backupAof, fsyncDir, fsyncFile, saveManifest } from '../backup';
import { EXIT_INVALID, EXIT_OK, invalid, usage } from '../errors';
import { confirmChange, note, say } from '../output';
import { withStoreLocked } from '../stores';
import { type AofFile, type AofTarget, resolveTarget } from '../target';

/** Options of `appendonly strip`. */
export interface StripOptions {
  readonly type: string;
  readonly last?: boolean;
  readonly fromHistory?: boolean;
  /** Do not ask for confirmation. */
  readonly yes?: boolean;
}

/** One byte range of a file replaced by other bytes (empty: removed). */
interface Edit {
  readonly start: number;
  readonly end: number;
  readonly bytes: Buffer;
}

interface Match {
  readonly file: AofFile;
  readonly group: WalkGroup;
  readonly record: number;
}

/**
 * `appendonly strip PATH --type TYPE [--last] [--yes]`: what a Redis user does by hand to undo an
 * accidental FLUSHALL (open appendonly.aof, delete the FLUSHALL, restart), on every incr file,
 * keeping the checksums right. A command with that one event disappears with its `#TS` and
 * `#CRC` lines; inside a MULTI group only the record goes, the rest of the group keeps its
 * bytes and gets a new `#CRC`. Files are rewritten whole through a temp file and a rename,
 * after a backup. The events after a removed one in the same file move down one sequence
 * number, as a replay numbers them.
 *
 * When a compaction came after the record, it is no longer in the log: the base holds its
 * effect. With `keepHistory: true` the replaced files are in `history/`; `--from-history` puts
 * the incr files back in front of the current ones (the whole chain from the first incr file
 * must be there), drops the base they replace, and strips from the result.
 */
export async function strip(pathArg: string, options: StripOptions): Promise<number> {
  const type = options.type;
  if (type === '' || type === 'MULTI' || type === 'EXEC')
    throw usage(`strip --type: ${JSON.stringify(type)} is not an event type`);
  const target = resolveTarget(pathArg);
  if (target.kind === 'sqlite') {
    throw usage(
      'strip works on AOF logs (a .db numbers every event and cannot lose one in the middle): ' +
        '`appendonly convert` it to an AOF folder, strip there, and convert back',
    );
  }
  await assertAofValid(target, 'strip records');
  let files = target.files;
  let restored: { manifest: Manifest; copied: string[] } | null = null;
  if (options.fromHistory) {
    restored = await historyChain(target);
    const fromHistory = new Set(restored.copied);
    files = restored.manifest.incrs.map((e) => fileOf(target, e, fromHistory.has(e.name)));
  }
  // With --last only the latest match is kept, so memory stays flat on a long log.
  let matches: Match[] = [];
  for await (const { file, group } of walkIncrs(files)) {
    for (let i = 0; i < group.records.length; i++) {
      if (group.records[i].type !== type) continue;
      if (options.last) matches = [{ file, group, record: i }];
      else matches.push({ file, group, record: i });
    }
  }
  if (matches.length === 0) {
    const hint =
      !options.fromHistory && fs.existsSync(path.join(target.logDir, 'history'))
        ? '; if a compaction came after it, try --from-history'
        : '';
    throw invalid(`no ${type} record in the incr files of the log${hint}`);
  }
  const chosen = options.last ? [matches[matches.length - 1]] : matches;
  const byFile = new Map<AofFile, Match[]>();
  for (const m of chosen) byFile.set(m.file, [...(byFile.get(m.file) ?? []), m]);
  const names = [...byFile.keys()].map((f) => f.name).join(', ');
  const question =
    `This will remove ${chosen.length} ${type} record${chosen.length === 1 ? '' : 's'} from ${names}` +
    `${restored !== null ? ', rebuilding the log from history/' : ''} (a backup is kept). Continue?`;
  if (!(await confirmChange(options.yes, 'strip', 'strip', question))) return EXIT_INVALID;

  await withStoreLocked(target, 'strip records', async () => {
    const changed = [...byFile.keys()]
      .map((f) => f.name)
      .filter((n) => fs.existsSync(path.join(target.logDir, n)));
    const replacedBase =
      restored !== null && target.manifest.base !== null ? [target.manifest.base.name] : [];
    backupAof(target, 'strip', [...changed, ...replacedBase]);
    if (restored !== null) {
      for (const name of restored.copied) {
        fs.copyFileSync(path.join(target.logDir, 'history', name), path.join(target.logDir, name));
        fsyncFile(path.join(target.logDir, name));
      }
      fsyncDir(target.logDir);
    }
    // A file put back from history/ is edited in its copy in the log folder; history/ stays as it was.
    for (const [file, ms] of byFile)
      rewriteFile({ ...file, path: path.join(target.logDir, file.name) }, editsFor(file, ms));
    if (restored !== null) {
      saveManifest(target, restored.manifest);
      for (const name of replacedBase)
        fs.renameSync(path.join(target.logDir, name), path.join(target.logDir, 'history', name));
      fsyncDir(target.logDir);
      note(
        `rebuilt the log from history/: ${restored.manifest.incrs.map((e) => e.name).join(', ')} (the base ${replacedBase.join('') || '-'} moved to history/)`,
      );
    }
  });
  for (const m of chosen)
    say(
      `removed ${type} at seq ${m.group.seq + m.record} (${m.file.name}, byte offset ${m.group.records[m.record].start})`,
    );
  say(
    `stripped ${chosen.length} ${type} record${chosen.length === 1 ? '' : 's'}; later events in the same file move down one sequence number each`,
  );
  return EXIT_OK;
}

function fileOf(target: AofTarget, e: ManifestEntry, inHistory: boolean): AofFile {
  const dir = inHistory ? path.join(target.logDir, 'history') : target.logDir;
  const f: AofFile = { name: e.name, path: path.join(dir, e.name), kind: 'incr' };
  return e.startSeq !== undefined ? { ...f, seq: e.startSeq } : f;
}

/** The edits that remove the matched records of one file, in file order. */
function editsFor(file: AofFile, matches: readonly Match[]): Edit[] {
  const fd = fs.openSync(file.path, 'r');
  try {
    const byGroup = new Map<WalkGroup, Set<number>>();
    for (const m of matches) byGroup.set(m.group, (byGroup.get(m.group) ?? new Set()).add(m.record));
    const edits: Edit[] = [];
    for (const [g, gone] of byGroup) {
      if (gone.size === g.records.length) {
        edits.push({ start: g.start, end: g.end, bytes: Buffer.alloc(0) });
        continue;
      }
      // Keep every byte of the group but the removed records; the #CRC covers what is kept.
      const body = Buffer.alloc((g.crcAt >= 0 ? g.crcAt : g.end) - g.start);
      fs.readSync(fd, body, 0, body.length, g.start);
      const parts: Buffer[] = [];
      let at = 0;
      for (let i = 0; i < g.records.length; i++) {
        if (!gone.has(i)) continue;
        const r = g.records[i];
        parts.push(body.subarray(at, r.start - g.start));
        at = r.end - g.start;
      }
      parts.push(body.subarray(at));
      const kept = Buffer.concat(parts);
      const crc =
        g.crcAt >= 0
          ? Buffer.from(`#CRC:${(crc32(kept) >>> 0).toString(16).padStart(8, '0')}\r\n`, 'latin1')
          : Buffer.alloc(0);
      edits.push({ start: g.start, end: g.end, bytes: Buffer.concat([kept, crc]) });
    }
    return edits.sort((a, b) => a.start - b.start);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes the file with its edits applied into a temp file, fsyncs it and renames it over the original. */
function rewriteFile(file: AofFile, edits: readonly Edit[]): void {
  const tmp = path.join(path.dirname(file.path), `temp-strip-${file.name}`);
  const src = fs.openSync(file.path, 'r');
  const dst = fs.openSync(tmp, 'w', 0o600);
  try {
    const size = fs.fstatSync(src).size;
    const copy = (from: number, to: number): void => {
      const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, Math.max(0, to - from)));
      for (let p = from; p < to; ) {
        const n = fs.readSync(src, chunk, 0, Math.min(chunk.length, to - p), p);
        if (n === 0) throw invalid(`${file.name} shrank while it was rewritten`);
        fs.writeSync(dst, chunk, 0, n);
        p += n;
      }
    };
    let at = 0;
    for (const e of edits) {
      copy(at, e.start);
      if (e.bytes.length > 0) fs.writeSync(dst, e.bytes);
      at = e.end;
    }
    copy(at, size);
    fs.fsyncSync(dst);
  } finally {
    fs.closeSync(src);
    fs.closeSync(dst);
  }
  fs.renameSync(tmp, file.path);
  fsyncDir(path.dirname(file.path));
}

/**
 * The log as it was before the compactions kept in history/: every incr file from the first
 * one, then the current incr files, with no base. Refused unless the chain is whole and ends
 * exactly where the current base starts.
 */
async function historyChain(target: AofTarget): Promise<{ manifest: Manifest; copied: string[] }> {
  const historyDir = path.join(target.logDir, 'history');
  if (!fs.existsSync(historyDir))
    throw invalid(
      `--from-history: ${historyDir} does not exist (the store was not run with keepHistory: true)`,
    );
  const pattern = new RegExp(`^${target.appendFilename.replace(/[.]/g, '\\.')}\\.(\\d+)\\.incr\\.aof$`);
  const old = fs
    .readdirSync(historyDir)
    .map((n) => ({ name: n, seq: Number(pattern.exec(n)?.[1] ?? Number.NaN) }))
    .filter((e) => Number.isSafeInteger(e.seq))
    .sort((a, b) => a.seq - b.seq);
  const current = target.manifest.incrs;
  const firstCurrent = current[0]?.seq ?? Number.POSITIVE_INFINITY;
  const chain = old.filter((e) => e.seq < firstCurrent);
  const whole =
    chain.length > 0 &&
    chain.every((e, i) => e.seq === i + 1) &&
    chain[chain.length - 1].seq === firstCurrent - 1;
  if (!whole) {
    throw invalid(
      `--from-history: history/ must hold every incr file from ${target.appendFilename}.1.incr.aof to the one before ${current[0]?.name}; ` +
        `found ${chain.map((e) => e.name).join(', ') || 'none'}`,
    );
  }
  let next = 1;
  const incrs: ManifestEntry[] = [];
  for (const e of chain) {
    const file: AofFile = { name: e.name, path: path.join(historyDir, e.name), kind: 'incr', seq: next };
    incrs.push({ name: e.name, seq: e.seq, type: 'i', startSeq: next });
    for await (const g of walkFile(file, next)) next = g.seq + g.records.length;
  }
  const baseSeq = target.manifest.base?.lastSeq ?? 0;
  if (next - 1 !== baseSeq) {
    throw invalid(
      `--from-history: the history files end at seq ${next - 1}, but the current base covers up to seq ${baseSeq}`,
    );
  }
  return {
    manifest: { base: null, incrs: [...incrs, ...current], history: [] },
    copied: chain.map((e) => e.name),
  };
}
