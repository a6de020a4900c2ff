import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Manifest, ManifestEntry } from '../manifest';
import type { WalkFile } from './group-layout';
import type { AofFile, AofLog } from './log-files';

/*
 * The log as it was before the compactions whose replaced files a store with `keepHistory: true`
 * moved to `<appendDirname>/history/`, or kept in the log folder for a consumer behind them (the
 * manifest's `type h` lines): every incr file from the first one, then the current incr
 * files, with no base. It only stands if the chain is whole (incr files 1, 2, … with no gap) and
 * ends exactly where the current base starts; anything else would replay another history.
 */

/** The folder of replaced files inside the log folder (the store's `keepHistory`). */
export const HISTORY_DIRNAME = 'history';

/** The history folder cannot give back a whole log; the message says what is missing. */
export class HistoryChainError extends Error {}

/** A log rebuilt from history/. */
export interface HistoryLog {
  /** Its manifest: the old incr files then the current ones, no base (kept files become incr lines). */
  readonly manifest: Manifest;
  /** The incr files that come from history/ (to be copied back into the log folder). */
  readonly copied: readonly string[];
  /** Its incr files, in order; those from history/ still point there. */
  readonly files: readonly AofFile[];
}

/**
 * Rebuilds the chain; `walkFile` counts the events of each old file. The old incr files come
 * from history/ (`keepHistory`) and from the manifest's `type h` lines: the files a compaction
 * kept in the log folder for a consumer behind it (a log may have both, when it ran with
 * `keepHistory` and later without). A file kept both ways is taken from the log folder.
 */
export async function historyChain(log: AofLog, walkFile: WalkFile): Promise<HistoryLog> {
  const historyDir = path.join(log.logDir, HISTORY_DIRNAME);
  const kept = log.manifest.history;
  if (!fs.existsSync(historyDir) && kept.length === 0)
    throw new HistoryChainError(
      `${historyDir} does not exist and the manifest keeps no replaced file (type h): the store ran without keepHistory: true and with no consumer behind its compactions`,
    );
  // LogDir.nextIncr names incr file n `<appendFilename>.<n>.incr.aof`.
  const pattern = new RegExp(`^${log.appendFilename.replace(/[.]/g, '\\.')}\\.(\\d+)\\.incr\\.aof$`);
  const bySeq = new Map<number, { name: string; seq: number; dir: string }>();
  if (fs.existsSync(historyDir))
    for (const name of fs.readdirSync(historyDir)) {
      const seq = Number(pattern.exec(name)?.[1] ?? Number.NaN);
      if (Number.isSafeInteger(seq)) bySeq.set(seq, { name, seq, dir: historyDir });
    }
  for (const e of kept) bySeq.set(e.seq, { name: e.name, seq: e.seq, dir: log.logDir });
  const old = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const current = log.manifest.incrs;
  const firstCurrent = current[0]?.seq ?? Number.POSITIVE_INFINITY;
  const chain = old.filter((e) => e.seq < firstCurrent);
  const whole =
    chain.length > 0 &&
    chain.every((e, i) => e.seq === i + 1) &&
    chain[chain.length - 1].seq === firstCurrent - 1;
  if (!whole) {
    throw new HistoryChainError(
      `history/ and the manifest's type h files must hold every incr file from ${log.appendFilename}.1.incr.aof to the one before ${current[0]?.name}; ` +
        `found ${chain.map((e) => e.name).join(', ') || 'none'}`,
    );
  }
  let next = 1;
  const incrs: ManifestEntry[] = [];
  for (const e of chain) {
    const file: AofFile = { name: e.name, path: path.join(e.dir, e.name), kind: 'incr', seq: next };
    incrs.push({ name: e.name, seq: e.seq, type: 'i', startSeq: next });
    for await (const g of walkFile(file, next)) next = g.seq + g.records.length;
  }
  const baseSeq = log.manifest.base?.lastSeq ?? 0;
  if (next - 1 !== baseSeq) {
    throw new HistoryChainError(
      `the history files end at seq ${next - 1}, but the current base covers up to seq ${baseSeq}`,
    );
  }
  const manifest: Manifest = { base: null, incrs: [...incrs, ...current], history: [] };
  const copied = chain.filter((e) => e.dir === historyDir).map((e) => e.name);
  const fromHistory = new Set(copied);
  const files = manifest.incrs.map((e) => {
    const dir = fromHistory.has(e.name) ? historyDir : log.logDir;
    const f: AofFile = { name: e.name, path: path.join(dir, e.name), kind: 'incr' };
    return e.startSeq !== undefined ? { ...f, seq: e.startSeq } : f;
  });
  return { manifest, copied, files };
}
