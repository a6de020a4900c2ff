import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { crcHex, encodeEnvelope } from '../record-codec';
import { RespEncoder } from '../resp-encoder';
import { fsyncDir, fsyncFile } from './durable';
import type { GroupLayout } from './group-layout';
import { HISTORY_DIRNAME, type HistoryLog } from './history';
import { type AofFile, type AofLog, saveManifest } from './log-files';

/*
 * Removing event records from the incr files (`appendonly strip`): what a Redis user does by
 * hand to undo an accidental FLUSHALL. A command of that one event disappears with its `#TS` and
 * `#CRC` lines; inside a MULTI group only the record goes, the rest of the group keeps its bytes
 * and gets a new `#CRC` over them. Files are rewritten whole through a temp file, fsync and
 * rename, so a crash leaves each file old or new. The events after a removed one in the same
 * file move down one sequence number, as a replay numbers them.
 */

/** One record to remove: the `record`-th of `group` in `file`. */
export interface StripMatch {
  readonly file: AofFile;
  readonly group: GroupLayout;
  readonly record: number;
}

/** The records of event type `type` in `groups`, in log order; with `lastOnly`, the last one only. */
export async function findRecords(
  groups: AsyncIterable<{ readonly file: AofFile; readonly group: GroupLayout }>,
  type: string,
  lastOnly: boolean,
): Promise<StripMatch[]> {
  // With lastOnly only the latest match is kept, so memory stays flat on a long log.
  let matches: StripMatch[] = [];
  for await (const { file, group } of groups) {
    for (let i = 0; i < group.records.length; i++) {
      if (group.records[i].type !== type) continue;
      if (lastOnly) matches = [{ file, group, record: i }];
      else matches.push({ file, group, record: i });
    }
  }
  return matches;
}

/** The files of the log folder that removing `matches` (from `restored`, if given) changes: for the backup. */
export function filesStripChanges(
  log: AofLog,
  matches: readonly StripMatch[],
  restored: HistoryLog | null,
): string[] {
  const changed = [...new Set(matches.map((m) => m.file.name))].filter((n) =>
    fs.existsSync(path.join(log.logDir, n)),
  );
  const replacedBase = restored !== null && log.manifest.base !== null ? [log.manifest.base.name] : [];
  return [...changed, ...replacedBase];
}

/**
 * Removes `matches`; with `restored`, first puts the files of the history chain back in the log
 * folder (history/ stays as it was), and after the edits switches the manifest to the restored
 * log and moves the base it replaces to history/. The caller holds the lock and has made a
 * backup. Returns the base moved away (none without `restored`).
 */
export function stripRecords(
  log: AofLog,
  matches: readonly StripMatch[],
  restored: HistoryLog | null,
): { readonly replacedBase: readonly string[] } {
  const historyDir = path.join(log.logDir, HISTORY_DIRNAME);
  const replacedBase = restored !== null && log.manifest.base !== null ? [log.manifest.base.name] : [];
  if (restored !== null) {
    for (const name of restored.copied) {
      fs.copyFileSync(path.join(historyDir, name), path.join(log.logDir, name));
      fsyncFile(path.join(log.logDir, name));
    }
    fsyncDir(log.logDir);
  }
  const byFile = new Map<AofFile, StripMatch[]>();
  for (const m of matches) byFile.set(m.file, [...(byFile.get(m.file) ?? []), m]);
  // A file put back from history/ is edited in its copy in the log folder.
  for (const [file, ms] of byFile)
    rewriteFile({ ...file, path: path.join(log.logDir, file.name) }, editsFor(file, ms));
  if (restored !== null) {
    saveManifest(log, restored.manifest);
    // Rebuilt from type h files alone, the log may have had no history/ yet.
    if (replacedBase.length > 0) fs.mkdirSync(historyDir, { recursive: true });
    for (const name of replacedBase) fs.renameSync(path.join(log.logDir, name), path.join(historyDir, name));
    fsyncDir(log.logDir);
  }
  return { replacedBase };
}

/** One byte range of a file replaced by other bytes (empty: removed). */
interface Edit {
  readonly start: number;
  readonly end: number;
  readonly bytes: Buffer;
}

/** The edits that remove the matched records of one file, in file order. */
function editsFor(file: AofFile, matches: readonly StripMatch[]): Edit[] {
  const fd = fs.openSync(file.path, 'r');
  try {
    const byGroup = new Map<GroupLayout, Set<number>>();
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
      const env = g.envelope;
      if (env !== undefined) {
        const keep = (_: unknown, i: number) => !gone.has(i);
        const enc = new RespEncoder();
        const n = g.records.length - gone.size;
        const ids = env.value.ids?.filter(keep);
        const versions = env.value.versions?.filter(keep);
        const placeholder = { type: 'SET', data: null };
        encodeEnvelope(enc, {
          seq: g.seq,
          time: env.value.time,
          events: new Array(n).fill(placeholder),
          ...(ids === undefined ? {} : { ids }),
          ...(versions === undefined ? {} : { versions }),
          ...(env.value.metadata === undefined ? {} : { metadata: env.value.metadata }),
        });
        parts.push(body.subarray(0, env.start - g.start), Buffer.from(enc.buf.subarray(0, enc.length)));
        at = env.end - g.start;
      }
      for (let i = 0; i < g.records.length; i++) {
        if (!gone.has(i)) continue;
        const r = g.records[i];
        parts.push(body.subarray(at, r.start - g.start));
        at = r.end - g.start;
      }
      parts.push(body.subarray(at));
      const kept = Buffer.concat(parts);
      const crc = g.crcAt >= 0 ? Buffer.from(`#CRC:${crcHex(crc32(kept))}\r\n`, 'latin1') : Buffer.alloc(0);
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
        if (n === 0) throw new Error(`${file.name} shrank while it was rewritten`);
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
