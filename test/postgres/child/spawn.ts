import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import * as path from 'node:path';

/** A running `worker.ts`, with the lines it printed so far. */
export interface Worker {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  /** Resolves with the first line (from `from` on) matching `pattern`; rejects if the child exits first. */
  waitFor(pattern: RegExp, from?: number): Promise<string>;
  readonly exited: Promise<number | null>;
}

/** Starts `worker.ts` with `args` in a new Node process running the TypeScript sources. */
export function spawnWorker(args: string[]): Worker {
  const child = spawn(
    process.execPath,
    ['-r', path.join(__dirname, '../../support/register.js'), path.join(__dirname, 'worker.ts'), ...args],
    { stdio: 'pipe' },
  );
  const lines: string[] = [];
  const waiters: { pattern: RegExp; from: number; resolve: (line: string) => void }[] = [];
  let stderr = '';
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.filter((w) => w.pattern.test(line) && lines.length > w.from)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    process: child,
    lines,
    exited,
    waitFor: (pattern, from = 0) => {
      const seen = lines.slice(from).find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ pattern, from, resolve });
        exited.then((code) =>
          reject(new Error(`worker exited (${code}) before printing ${pattern}: ${stderr}`)),
        );
      });
    },
  };
}

/** For a describe block: `spawnWorker` whose children are SIGKILLed after each test. */
export function useWorkers(): typeof spawnWorker {
  const children: Worker[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
  });
  return (args) => {
    const child = spawnWorker(args);
    children.push(child);
    return child;
  };
}
