import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as path from 'node:path';

/** A running child of `writer.ts`, with the lines it printed so far. */
export interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  /** Resolves when a line matching `pattern` has been printed (rejects if the child exits first). */
  waitFor(pattern: RegExp): Promise<string>;
  /** Resolves when the child has exited. */
  readonly exited: Promise<number | null>;
}

/**
 * Starts `writer.ts` with `args` in a new Node process; with `maxFileKb`, under `ulimit -f`, so
 * that a write past that size fails with EFBIG (a real I/O error, which SQLite reports as
 * SQLITE_IOERR_WRITE).
 */
export function spawnWriter(args: string[], maxFileKb?: number): Child {
  const node = [
    process.execPath,
    '-r',
    path.join(__dirname, '../../support/register.js'),
    path.join(__dirname, 'writer.ts'),
    ...args,
  ];
  const child =
    maxFileKb === undefined
      ? spawn(node[0], node.slice(1), { stdio: 'pipe' })
      : spawn('bash', ['-c', `ulimit -f ${maxFileKb} && exec "$@"`, 'bash', ...node], { stdio: 'pipe' });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let stderr = '';
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.filter((w) => w.pattern.test(line))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    process: child,
    lines,
    exited,
    waitFor: (pattern) => {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve });
        exited.then((code) =>
          reject(new Error(`child exited (${code}) before printing ${pattern}: ${stderr}`)),
        );
      });
    },
  };
}

/**
 * For a describe block: returns `spawnWriter` whose children are SIGKILLed after each test, so
 * that a failed test never leaves a writer holding the store.
 */
export function useWriters(): typeof spawnWriter {
  const children: Child[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
  });
  return (args, maxFileKb) => {
    const child = spawnWriter(args, maxFileKb);
    children.push(child);
    return child;
  };
}
