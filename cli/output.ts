import * as readline from 'node:readline';
import { SingleBar } from 'cli-progress';
import { usage } from './errors';

/**
 * Progress of long work: a bar on stderr when it is a terminal, otherwise a plain line every
 * 10 % (so that logs of a cron job stay readable and a pipe never sees control characters).
 */
export interface Progress {
  /** Sets the amount done (same unit as `total`). */
  update(done: number): void;
  /** Ends the bar (or prints the final line). */
  stop(): void;
}

/** Starts a progress report for `what`, of `total` units (bytes unless `unit` says otherwise). */
export function progress(what: string, total: number, unit = 'bytes'): Progress {
  // Small work finishes before a report could help; a report would only be noise.
  // APPENDONLY_NO_PROGRESS=1 silences it altogether (scripts that keep stderr for errors only).
  if (
    total < (unit === 'bytes' ? 8 * 1024 * 1024 : 100_000) ||
    process.env.APPENDONLY_NO_PROGRESS !== undefined
  ) {
    return { update: () => {}, stop: () => {} };
  }
  if (process.stderr.isTTY) {
    const bar = new SingleBar({
      format: `${what} [{bar}] {percentage}% | {value}/{total} ${unit} | eta {eta}s`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    });
    bar.start(Math.max(total, 1), 0);
    return {
      update: (done) => bar.update(Math.min(done, Math.max(total, 1))),
      stop: () => bar.stop(),
    };
  }
  let lastTenth = -1;
  return {
    update: (done) => {
      if (total <= 0) return;
      const tenth = Math.floor((done * 10) / total);
      if (tenth > lastTenth && tenth < 10) {
        lastTenth = tenth;
        if (tenth > 0) process.stderr.write(`${what}: ${tenth * 10}% (${done}/${total} ${unit})\n`);
      }
    },
    stop: () => {},
  };
}

/**
 * Asks `question [y/N]` on the terminal; resolves true only for y/yes. Callers ask only when
 * stdin is a TTY: without one, a destructive command needs `--yes`.
 */
export function confirm(question: string): Promise<boolean> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) => {
    rl.question(`${question} [y/N] `, (answer) => {
      rl.close();
      resolve(/^y(es)?$/i.test(answer.trim()));
    });
  });
}

/** A line of the command's result on stdout. */
export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A notice on stderr (warnings, backups written), so that stdout stays parseable. */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Before a destructive step of `command`: true to go on. `--yes` goes on; otherwise the user is
 * asked `question` on the terminal, and without one the command refuses (exit 2) rather than
 * guess. A no prints `nothing changed`.
 */
export async function confirmed(
  command: string,
  question: string,
  yes: boolean | undefined,
): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY)
    throw usage(`${command}: not a terminal, cannot ask; pass --yes to cut without asking`);
  if (await confirm(question)) return true;
  note('nothing changed');
  return false;
}
