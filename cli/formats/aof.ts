import * as fs from 'node:fs';
import * as path from 'node:path';
import { AofStore } from '../../adapters/aof/aof-store';
import { backupLogFiles } from '../../adapters/aof/tools/backup';
import { cutFileTail } from '../../adapters/aof/tools/cut-tail';
import {
  HISTORY_DIRNAME,
  HistoryChainError,
  type HistoryLog,
  historyChain,
} from '../../adapters/aof/tools/history';
import { DEFAULT_APPEND_DIRNAME } from '../../adapters/aof/tools/log-files';
import { AofLogWriter } from '../../adapters/aof/tools/log-writer';
import { logSize, readLogReadOnly } from '../../adapters/aof/tools/read-only';
import { filesStripChanges, findRecords, stripRecords } from '../../adapters/aof/tools/strip';
import { planTruncate, truncateLog } from '../../adapters/aof/tools/truncate';
import type { LogPoint } from '../../adapters/common/log-point';
import type { ConsumerRecord, EventStore } from '../../src/index';
import { readConsumerRecords } from '../../adapters/aof/tools/consumers';
import { CONSUMERS_FILE } from '../../adapters/aof/consumer-file';
import { canConsume } from '../../src/consumers/consumer-hub';
import { carryPositions, clampPositions, type PositionChange, stripPositions } from '../consumer-positions';
import type { ReplayRecord } from '../../src/store/replay-batch';
import { checkAofFiles, type FileVerdict } from '../../adapters/aof/tools/check';
import { assertAofValid } from '../aof-valid';
import { walkFile, walkIncrs } from '../../adapters/aof/tools/walk';
import { EXIT_INVALID, EXIT_OK, insideCommand, invalid, usage } from '../errors';
import type { CheckOptions, LogFileInfo, LogTools, LogWriter, StripOptions } from '../log-format';
import { confirmChange, note, progress, say } from '../output';
import { withStoreLocked } from '../stores';
import type { AofTarget } from '../target';

/*
 * The tool on an AOF log. Reading goes through the store's reader without the lock (as
 * redis-check-aof reads); every change is made under the store's lock (by opening an AofStore,
 * whose open reads the manifest but no record, so a damaged log can still be repaired), after a
 * backup, and only on a log that loads whole (check --fix aside, which is what makes it load).
 * The byte editing is the adapter's (adapters/aof/tools); the walk of a file's groups is
 * cli/aof-walk's, handed to the tools.
 */
export class AofTools implements LogTools {
  readonly kind = 'aof';
  readonly location: string;

  /** `pathArg` is PATH as the user wrote it, which `check`'s advice quotes. */
  constructor(
    private readonly target: AofTarget,
    private readonly pathArg: string,
  ) {
    this.location = target.logDir;
  }

  files(): LogFileInfo[] {
    return this.target.files.map((f) => ({ name: f.name, kind: f.kind, size: fs.statSync(f.path).size }));
  }

  async *records(label: string): AsyncGenerator<readonly ReplayRecord[]> {
    const bar = progress(label, logSize(this.target));
    let done = 0;
    try {
      yield* readLogReadOnly(this.target, {
        warn: (m) => note(`warning: ${m} (run \`appendonly check --fix\` to cut it)`),
        progress: (n) => {
          done += n;
          bar.update(done);
        },
      });
    } finally {
      bar.stop();
    }
  }

  /** Per file, valid or where the damage starts, with redis-check-aof's `AOF analyzed:` line. */
  async check(options: CheckOptions): Promise<number> {
    const target = this.target;
    const verdicts = await this.verify();
    const bad = verdicts.find((v) => !v.valid);
    if (bad === undefined) {
      say(`${target.manifestPath}: all ${verdicts.length} files of the log are valid`);
      return EXIT_OK;
    }
    if (!options.fix) {
      // Say how much a fix would drop: damage in the middle of a file cuts every command after it.
      say(
        `the log is not valid: \`appendonly check ${this.pathArg} --fix\` would cut ${bad.file.name} at byte offset ${bad.goodUpTo}, ` +
          `dropping the ${bad.size - bad.goodUpTo} bytes after it (saved to a side file; a backup is kept)`,
      );
      return EXIT_INVALID;
    }
    return this.fix(verdicts, bad, options);
  }

  private async verify(): Promise<FileVerdict[]> {
    const bar = progress('checking', logSize(this.target));
    let done = 0;
    let verdicts: FileVerdict[];
    try {
      verdicts = await checkAofFiles(this.target.files, (n) => {
        done += n;
        bar.update(done);
      });
    } finally {
      bar.stop();
    }
    for (const v of verdicts) report(v);
    return verdicts;
  }

  private async fix(verdicts: FileVerdict[], bad: FileVerdict, options: CheckOptions): Promise<number> {
    const target = this.target;
    if (bad !== verdicts[verdicts.length - 1]) {
      throw invalid(
        `${bad.file.name} is damaged at byte offset ${bad.goodUpTo} and is not the last file of the log: ` +
          'cutting it would drop every file after it; restore it from a backup, or cut the whole log at that point ' +
          'with `appendonly truncate --to-seq N`',
      );
    }
    const cut = bad.goodUpTo;
    const lost = bad.size - cut;
    const question = `This will cut ${lost} bytes from ${bad.file.name} at byte offset ${cut} (they are saved to a side file). Continue?`;
    if (!(await confirmChange(options.yes, 'check --fix', 'cut', question))) return EXIT_INVALID;
    await withStoreLocked(this.store(), 'repair the log', async (store) => {
      this.backupFiles('check-fix', [bad.file.name]);
      note(`cut bytes saved to: ${cutFileTail(target, bad.file, cut, bad.size)}`);
      say(`Successfully truncated AOF ${bad.file.name} to ${cut} bytes (${lost} bytes removed)`);
      // The cut tail may hold events a consumer had already handled: clamp it to the new end.
      const end = await lastSeqOf(target);
      await carry(store, (records) => clampPositions(records, end));
    });
    const after = await checkAofFiles(target.files);
    const still = after.find((v) => !v.valid);
    if (still !== undefined) {
      throw invalid(
        `${still.file.name} is still not valid after the cut: ${still.ours?.message ?? still.redis.error?.message}`,
      );
    }
    say('the log is valid now');
    return EXIT_OK;
  }

  /**
   * Every incr file's records of one type, or the last one. When a compaction came after the
   * record, it is no longer in the log: the base holds its effect. With `keepHistory: true` the
   * replaced files are in history/, and a compaction with a consumer behind it keeps the ones
   * it needs in the log folder (type h); `--from-history` puts those incr files back in front of
   * the current ones, drops the base they replace, and strips from the result.
   */
  async strip(options: StripOptions): Promise<number> {
    const target = this.target;
    const type = options.type;
    await assertAofValid(target, 'strip records');
    let restored: HistoryLog | null = null;
    if (options.fromHistory) {
      try {
        restored = await historyChain(target, walkFile);
      } catch (err) {
        if (err instanceof HistoryChainError) throw invalid(`--from-history: ${err.message}`);
        throw err;
      }
    }
    const matches = await findRecords(
      walkIncrs(restored?.files ?? target.files),
      type,
      options.last === true,
    );
    if (matches.length === 0) {
      const hint =
        !options.fromHistory &&
        (fs.existsSync(path.join(target.logDir, HISTORY_DIRNAME)) || target.manifest.history.length > 0)
          ? '; if a compaction came after it, try --from-history'
          : '';
      throw invalid(`no ${type} record in the incr files of the log${hint}`);
    }
    const names = [...new Set(matches.map((m) => m.file.name))].join(', ');
    const question =
      `This will remove ${matches.length} ${type} record${matches.length === 1 ? '' : 's'} from ${names}` +
      `${restored !== null ? ', rebuilding the log from its replaced incr files (history/, type h)' : ''} (a backup is kept). Continue?`;
    if (!(await confirmChange(options.yes, 'strip', 'strip', question))) return EXIT_INVALID;
    await withStoreLocked(this.store(), 'strip records', async (store) => {
      this.backupFiles('strip', filesStripChanges(target, matches, restored));
      // Positions first: a crash before the strip leaves them lower than they should be (events
      // handled again, deduped by id), never beyond what the consumer has handled.
      const removed = matches.map((m) => m.group.seq + m.record);
      // An incr file the manifest gives a start seq keeps its numbering: a removal before it
      // moves no event (and no position) from there on.
      const runStarts = (restored?.files ?? target.files).flatMap((f) =>
        f.kind === 'incr' && f.seq !== undefined ? [f.seq] : [],
      );
      await carry(store, (records) => stripPositions(records, removed, runStarts));
      const { replacedBase } = stripRecords(target, matches, restored);
      if (restored !== null) {
        note(
          `rebuilt the log from its replaced incr files: ${restored.manifest.incrs.map((e) => e.name).join(', ')} (the base ${replacedBase.join('') || '-'} moved to history/)`,
        );
      }
    });
    for (const m of matches)
      say(
        `removed ${type} at seq ${m.group.seq + m.record} (${m.file.name}, byte offset ${m.group.records[m.record].start})`,
      );
    say(
      `stripped ${matches.length} ${type} record${matches.length === 1 ? '' : 's'}; later events in the same file move down one sequence number each`,
    );
    return EXIT_OK;
  }

  /**
   * Keeps every command up to the point and drops the rest. `--to-timestamp` needs `#TS`
   * annotations; a log written without `aofTimestamps` has none, and that is said rather than guessed.
   */
  async truncate(point: LogPoint, yes?: boolean): Promise<number> {
    const target = this.target;
    await assertAofValid(target, 'truncate the log');
    const plan = await planTruncate(target, walkIncrs(target.files), point);
    switch (plan.kind) {
      case 'before-base':
        throw invalid(
          `seq ${plan.seq} is before the base (${plan.base} covers up to seq ${plan.baseSeq}): ` +
            'the commands before it were compacted away; restore an older backup or history/',
        );
      case 'inside-command':
        throw insideCommand(plan.seq, plan.first, plan.last);
      case 'no-times':
        throw invalid(
          'the log has no #TS annotations (it was written without aofTimestamps: true), so it cannot be cut by time; ' +
            'find the sequence number with `appendonly cat` and use --to-seq',
        );
      case 'nothing':
        say(`nothing to cut: the log ends at seq ${plan.lastSeq}, before the point`);
        return EXIT_OK;
      case 'cut': {
        const question =
          `This will drop seq ${plan.seq}..${plan.lastSeq}: ${plan.file.name} cut at byte offset ${plan.offset}` +
          `${plan.dropped.length > 0 ? `, ${plan.dropped.join(', ')} removed` : ''} (a backup is kept). Continue?`;
        if (!(await confirmChange(yes, 'truncate', 'truncate', question))) return EXIT_INVALID;
        await withStoreLocked(this.store(), 'truncate the log', async (store) => {
          this.backupFiles('truncate', plan.touches);
          // Positions first, for the reason strip gives: a crash between leaves them at or before the end.
          await carry(store, (records) => clampPositions(records, plan.seq - 1));
          truncateLog(target, plan);
        });
        say(
          `truncated the log before seq ${plan.seq}: kept up to seq ${plan.seq - 1}, dropped seq ${plan.seq}..${plan.lastSeq}` +
            ` (${plan.file.name} cut at byte offset ${plan.offset}${plan.dropped.length > 0 ? `; removed ${plan.dropped.join(', ')}` : ''})`,
        );
        return EXIT_OK;
      }
    }
  }

  assertLoads(command: string): Promise<void> {
    return assertAofValid(this.target, command);
  }

  consumerRecords(): Promise<readonly ConsumerRecord[]> {
    return readConsumerRecords(this.target.logDir, this.target.files);
  }

  store(): EventStore {
    return new AofStore({
      dir: this.target.dataDir,
      appendDirname: this.target.appendDirname,
      appendFilename: this.target.appendFilename,
      autoRewritePercentage: 0,
    });
  }

  replaySize(): number {
    return logSize(this.target);
  }

  async backup(_store: EventStore, command: string): Promise<void> {
    this.backupFiles(
      command,
      this.target.files.map((f) => f.name),
    );
  }

  /** Backs up the manifest and `names` beside the log folder, and prints where. */
  private backupFiles(command: string, names: readonly string[]): void {
    // The consumers' file too, when there is one: the tools that change seqs carry its positions.
    const consumers = fs.existsSync(path.join(this.target.logDir, CONSUMERS_FILE)) ? [CONSUMERS_FILE] : [];
    const { dir, files } = backupLogFiles(this.target, command, [...names, ...consumers]);
    note(
      `backup: ${dir} (${files} file${files === 1 ? '' : 's'}; to undo, copy them back into ${this.target.logDir})`,
    );
  }
}

/** Carries the consumers' positions of the AOF store `store` (open, holding the lock) by `rule`. */
async function carry(
  store: EventStore,
  rule: (records: readonly ConsumerRecord[]) => PositionChange[],
): Promise<void> {
  if (!canConsume(store)) return;
  await carryPositions({ load: () => store.loadConsumers(), save: (r) => store.saveConsumer(r) }, rule, say);
}

/** The last seq of the log as its files now stand (the base's when no incr holds an event). */
async function lastSeqOf(target: AofTarget): Promise<number> {
  let last = target.manifest.base?.lastSeq ?? 0;
  for await (const { group } of walkIncrs(target.files)) last = group.seq + group.records.length - 1;
  return last;
}

function report(v: FileVerdict): void {
  const { file, redis, size } = v;
  say(
    `AOF analyzed: filename=${file.name}, size=${size}, ok_up_to=${redis.okUpTo}, ok_up_to_line=${v.redisLine}, diff=${size - redis.okUpTo}`,
  );
  if (v.valid) {
    say(`${file.kind === 'base' ? 'BASE' : 'INCR'} AOF ${file.name} is valid`);
    return;
  }
  if (redis.error !== null)
    say(
      `${file.name}: ${redis.error.message} at byte offset ${redis.error.offset} (as redis-check-aof sees it)`,
    );
  if (v.ours !== null) {
    const whose =
      redis.error === null
        ? v.ours.checksum
          ? " [found by appendonly's #CRC check; redis-check-aof does not verify checksums and sees this file as valid]"
          : " [found by appendonly's reader; redis-check-aof does not check this]"
        : '';
    say(`${file.name}: ${v.ours.message}${whose}`);
  }
  say(
    `${file.name} is not valid: the last good offset is ${v.goodUpTo} of ${size} (${size - v.goodUpTo} bytes after it)`,
  );
}

/** A new AOF log in the data folder `to` for `convert`: the folder must not exist or hold nothing. */
export function createAofLog(
  to: string,
  toArg: string,
): { readonly kind: string; readonly writer: LogWriter } {
  if (fs.existsSync(to)) {
    if (!fs.statSync(to).isDirectory()) throw usage(`${toArg}: not a folder`);
    const log = path.join(to, DEFAULT_APPEND_DIRNAME);
    if (fs.readdirSync(to).length > 0 && (!fs.existsSync(log) || fs.readdirSync(log).length > 0)) {
      throw usage(
        `${toArg}: the folder is not empty; refusing to write a log into it (convert writes to a new folder)`,
      );
    }
  }
  return { kind: 'aof', writer: new AofLogWriter(to) };
}
