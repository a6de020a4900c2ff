import * as fs from 'node:fs';
import * as path from 'node:path';
import { type FileVerdict, checkAofFiles } from '../aof-check';
import { backupAof, fsyncDir, fsyncFile, stamp } from '../backup';
import { EXIT_INVALID, EXIT_OK, invalid } from '../errors';
import { confirmChange, note, progress, say } from '../output';
import { checkSqlite } from '../sqlite-tools';
import { withStoreLocked } from '../stores';
import { type AofTarget, resolveTarget } from '../target';

/** Options of `appendonly check`. */
export interface CheckOptions {
  readonly fix?: boolean;
  readonly yes?: boolean;
}

/**
 * `appendonly check PATH [--fix] [--yes]`: per file, valid or where the damage starts, with
 * redis-check-aof's `AOF analyzed:` line. Returns the exit code (0 valid, 1 invalid).
 */
export async function check(pathArg: string, options: CheckOptions): Promise<number> {
  const target = resolveTarget(pathArg);
  if (target.kind === 'sqlite') return checkSqlite(target, options);
  const verdicts = await verify(target);
  const bad = verdicts.find((v) => !v.valid);
  if (bad === undefined) {
    say(`${target.manifestPath}: all ${verdicts.length} files of the log are valid`);
    return EXIT_OK;
  }
  if (!options.fix) {
    // Say how much a fix would drop: damage in the middle of a file cuts every command after it.
    say(
      `the log is not valid: \`appendonly check ${pathArg} --fix\` would cut ${bad.file.name} at byte offset ${bad.goodUpTo}, ` +
        `dropping the ${bad.size - bad.goodUpTo} bytes after it (saved to a side file; a backup is kept)`,
    );
    return EXIT_INVALID;
  }
  return fix(target, verdicts, bad, options);
}

async function verify(target: AofTarget): Promise<FileVerdict[]> {
  const total = target.files.reduce((n, f) => n + fs.statSync(f.path).size, 0);
  const bar = progress('checking', total);
  let done = 0;
  let verdicts: FileVerdict[];
  try {
    verdicts = await checkAofFiles(target.files, (n) => {
      done += n;
      bar.update(done);
    });
  } finally {
    bar.stop();
  }
  for (const v of verdicts) report(v);
  return verdicts;
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

async function fix(
  target: AofTarget,
  verdicts: FileVerdict[],
  bad: FileVerdict,
  options: CheckOptions,
): Promise<number> {
  const last = verdicts[verdicts.length - 1];
  if (bad !== last) {
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
  await withStoreLocked(target, 'repair the log', async () => {
    backupAof(target, 'check-fix', [bad.file.name]);
    const side = path.join(target.logDir, `${bad.file.name}.cut-${stamp()}`);
    const fd = fs.openSync(bad.file.path, 'r+');
    try {
      // The cut bytes go to the side file first, durably, and only then is the log cut: the
      // bytes before `cut` are never rewritten, only the tail after them is removed.
      const tail = Buffer.allocUnsafe(lost);
      let got = 0;
      while (got < lost) {
        const n = fs.readSync(fd, tail, got, lost - got, cut + got);
        if (n === 0) throw invalid(`${bad.file.name} shrank while it was repaired`);
        got += n;
      }
      fs.writeFileSync(side, tail, { mode: 0o600 });
      fsyncFile(side);
      fsyncDir(target.logDir);
      fs.ftruncateSync(fd, cut);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    note(`cut bytes saved to: ${side}`);
    say(`Successfully truncated AOF ${bad.file.name} to ${cut} bytes (${lost} bytes removed)`);
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
