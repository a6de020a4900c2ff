import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { onLines } from './lines';

/** How long `waitFor` waits by default before it gives up, naming what it waited for. */
export const WAIT_MS = 60_000;

/** A running TypeScript child process, with the lines it has printed so far. */
export interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  /** Every whole line printed on stdout so far, in order. */
  readonly lines: string[];
  /**
   * Resolves with the first line from index `from` on that matches `pattern` (a RegExp, or a
   * test of the line); rejects if the child exits before printing one, or after `ms` (the error
   * names the pattern, the last lines and stderr).
   */
  waitFor(pattern: LinePattern, from?: number, ms?: number): Promise<string>;
  /** Writes `line` and a newline on the child's stdin. */
  send(line: string): void;
  /** Resolves with the exit code (null when killed by a signal) once the child's output is all read. */
  readonly exited: Promise<number | null>;
  /** What the child wrote on stderr so far. */
  readonly stderr: () => string;
}

/** What `waitFor` waits for. */
export type LinePattern = RegExp | ((line: string) => boolean);

/** Options of {@link spawnChild}. */
export interface ChildOptions {
  /** Runs the child under `ulimit -f` (KiB): a write past it fails with EFBIG, a real I/O error. */
  readonly maxFileKb?: number;
}

/**
 * Starts `script` (a `.ts` file) in a new Node process that runs the TypeScript sources through
 * `register.js`, with the 'appendonly' aliases jest has, so a test can kill a real process
 * running the real code without a build step.
 */
export function spawnChild(script: string, args: readonly string[], options: ChildOptions = {}): Child {
  const node = [process.execPath, '-r', path.join(__dirname, 'register.js'), script, ...args];
  const child =
    options.maxFileKb === undefined
      ? spawn(node[0], node.slice(1), { stdio: 'pipe' })
      : spawn('bash', ['-c', `ulimit -f ${options.maxFileKb} && exec "$@"`, 'bash', ...node], {
          stdio: 'pipe',
        });
  const lines: string[] = [];
  const waiters = new Set<{
    test: (line: string) => boolean;
    from: number;
    resolve: (line: string) => void;
  }>();
  let stderr = '';
  onLines(child.stdout, (line) => {
    lines.push(line);
    for (const w of waiters) {
      if (lines.length > w.from && w.test(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  // 'close', not 'exit': every line the child printed has been read by then.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const describe = (pattern: LinePattern, why: string) =>
    new Error(
      `${path.basename(script)} ${args.join(' ')}: ${why} before printing ${pattern}; last lines: ${JSON.stringify(lines.slice(-5))}; stderr: ${stderr}`,
    );
  return {
    process: child,
    lines,
    exited,
    stderr: () => stderr,
    send: (line) => {
      child.stdin.write(`${line}\n`);
    },
    waitFor: (pattern, from = 0, ms = WAIT_MS) => {
      const test = typeof pattern === 'function' ? pattern : (line: string) => pattern.test(line);
      const seen = lines.slice(from).find(test);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(describe(pattern, `no line in ${ms} ms`));
        }, ms);
        const waiter = {
          test,
          from,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.add(waiter);
        exited.then((code) => {
          if (!waiters.delete(waiter)) return;
          clearTimeout(timer);
          reject(describe(pattern, `exited (${code})`));
        });
      });
    },
  };
}

/**
 * For a describe block: a `spawnChild` of `script` whose children are SIGKILLed after each test,
 * so that a failed test never leaves a child behind holding a store.
 */
export function useChildren(script: string): (args: readonly string[], options?: ChildOptions) => Child {
  const children: Child[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      // SIGKILL ends a stopped (SIGSTOP) process too.
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
      await child.exited;
    }
  });
  return (args, options) => {
    const child = spawnChild(script, args, options);
    children.push(child);
    return child;
  };
}

/**
 * SIGSTOPs the child and resolves once the kernel shows every thread of it stopped (Linux:
 * state `T` in /proc/<pid>/task/<tid>/stat), so that nothing it sends can land after this
 * resolves. Bounded by `ms`.
 */
export async function stopChild(child: Child, ms = 10_000): Promise<void> {
  const pid = child.process.pid!;
  child.process.kill('SIGSTOP');
  const deadline = Date.now() + ms;
  const stopped = (tid: string) => {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      return true; // the thread ended since the listing
    }
    // pid (comm) state …: comm may hold spaces or parentheses; the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
  };
  while (!fs.readdirSync(`/proc/${pid}/task`).every(stopped)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop in ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/**
 * The crash loop of the consumer tests: `kills` times, a child started with `args(false)` is
 * SIGKILLed at a random moment after it printed `READY`; then one started with `args(true)` runs
 * to its end. Resolves with that last child's `DONE <head>` head, once it exited with 0.
 */
export async function killAgainAndAgain(
  spawnOne: (args: readonly string[]) => Child,
  args: (finish: boolean) => readonly string[],
  kills: number,
): Promise<number> {
  for (let k = 0; k < kills; k++) {
    const child = spawnOne(args(false));
    await child.waitFor(/^READY$/);
    await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 150)));
    child.process.kill('SIGKILL');
    await child.exited;
  }
  const last = spawnOne(args(true));
  const done = await last.waitFor(/^DONE \d+$/);
  const code = await last.exited;
  if (code !== 0) throw new Error(`the last run exited with ${code}: ${last.stderr()}`);
  return Number(done.split(' ')[1]);
}
