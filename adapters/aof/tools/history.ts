import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Manifest, ManifestEntry } from '../manifest';
import type { WalkFile } from './group-layout';
import type { AofFile, AofLog } from './log-files';

/*
 * The log as it was before the compactions whose replaced files a store with `keepHistory: true`
 * moved to `<appendDirname>/history/`: every incr file from the first one, then the current incr
 * files, with no base. It only stands if the chain is whole (incr files 1, 2, … with no gap) and
 * ends exactly where the current base starts; anything else would replay another history.
 */

/** The folder of replaced files inside the log folder (the store's `keepHistory`). */
export const HISTORY_DIRNAME = 'history';

/** The history folder cannot give back a whole log; the message says what is missing. */
export class HistoryChainError extends Error {}

/** A log rebuilt from history/. */
export interface HistoryLog {
  /** Its manifest: the old incr files then the current ones, no base. */
  readonly manifest: Manifest;
  /** The incr files that come from history/ (to be copied back into the log folder). */
  readonly copied: readonly string[];
  /** Its incr files, in order; those from history/ still point there. */
  readonly files: readonly AofFile[];
}

/** Rebuilds the chain; `walkFile` counts the events of each old file. */
export async function historyChain(log: AofLog, walkFile: WalkFile): Promise<HistoryLog> {
  const historyDir = path.join(log.logDir, HISTORY_DIRNAME);
  if (!fs.existsSync(historyDir))
    throw new HistoryChainError(
      `${historyDir} does not exist (the store was not run with keepHistory: true)`,
    );
  // LogDir.nextIncr names incr file n `<appendFilename>.<n>.incr.aof`.
  const pattern = new RegExp(`^${log.appendFilename.replace(/[.]/g, '\\.')}\\.(\\d+)\\.incr\\.aof$`);
  const old = fs
    .readdirSync(historyDir)
    .map((n) => ({ name: n, seq: Number(pattern.exec(n)?.[1] ?? Number.NaN) }))
    .filter((e) => Number.isSafeInteger(e.seq))
    .sort((a, b) => a.seq - b.seq);
  const current = log.manifest.incrs;
  const firstCurrent = current[0]?.seq ?? Number.POSITIVE_INFINITY;
  const chain = old.filter((e) => e.seq < firstCurrent);
  const whole =
    chain.length > 0 &&
    chain.every((e, i) => e.seq === i + 1) &&
    chain[chain.length - 1].seq === firstCurrent - 1;
  if (!whole) {
    throw new HistoryChainError(
      `history/ must hold every incr file from ${log.appendFilename}.1.incr.aof to the one before ${current[0]?.name}; ` +
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
  const baseSeq = log.manifest.base?.lastSeq ?? 0;
  if (next - 1 !== baseSeq) {
    throw new HistoryChainError(
      `the history files end at seq ${next - 1}, but the current base covers up to seq ${baseSeq}`,
    );
  }
  const manifest: Manifest = { base: null, incrs: [...incrs, ...current], history: [] };
  const copied = chain.map((e) => e.name);
  const fromHistory = new Set(copied);
  const files = manifest.incrs.map((e) => {
    const dir = fromHistory.has(e.name) ? historyDir : log.logDir;
    const f: AofFile = { name: e.name, path: path.join(dir, e.name), kind: 'incr' };
    return e.startSeq !== undefined ? { ...f, seq: e.startSeq } : f;
  });
  return { manifest, copied, files };
}
