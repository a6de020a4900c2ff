import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/*
 * The servers the kv-server bench measures, each in its own process: the kv-server, a real
 * Redis, and the bare-Node floor; how to pin them (taskset), read their CPU time, and stop them.
 */

/** `--cpus server,bench`: where taskset pins the servers and redis-benchmark. */
export interface Pinning {
  readonly server: number;
  readonly bench: number;
}

/** Parses `--cpus server,bench`; null when not given. */
export function parseCpus(value: string | undefined): Pinning | null {
  if (value === undefined) return null;
  const [server, bench] = value.split(',').map(Number);
  if (!Number.isInteger(server) || !Number.isInteger(bench) || server < 0 || bench < 0)
    throw new Error(`--cpus wants two CPU numbers, as 0,1 (got ${value})`);
  if (!which('taskset')) throw new Error('--cpus needs taskset (Debian: util-linux)');
  return { server, bench };
}

/** The command line that runs `cmd` pinned to `cpu` when pinning is on. */
export function pinned(cpu: number | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
}

/** A server under test: its port, its process (for its CPU time), and how to stop it (and remove its data). */
export interface Target {
  readonly name: string;
  readonly port: number;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU seconds a process has used so far, all threads (utime + stime of /proc/<pid>/stat), or null off Linux. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * The reference: Node's sockets and the least parsing a server can do. It finds where each
 * request ends (multibulk by its lengths, inline by its newline, across chunks) and answers +OK
 * to each: no arguments decoded, no state, no log.
 */
const FLOOR_SERVER = `
const net = require('node:net');
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => {});
  let rest = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    const buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
    let at = 0;
    let requests = 0;
    while (at < buf.length) {
      let end = buf.indexOf(10, at);
      if (end < 0) break;
      if (buf[at] === 42) {
        const argc = Number(buf.toString('latin1', at + 1, end - 1));
        let next = end + 1;
        for (let a = 0; a < argc && next >= 0; a++) {
          const line = buf.indexOf(10, next);
          next = line < 0 ? -1 : line + 1 + Number(buf.toString('latin1', next + 1, line - 1)) + 2;
          if (next > buf.length) next = -1;
        }
        if (next < 0) break;
        end = next - 1;
      }
      at = end + 1;
      requests++;
    }
    rest = Buffer.from(buf.subarray(at));
    if (requests > 0) socket.write('+OK\\r\\n'.repeat(requests));
  });
});
server.listen(Number(process.argv[1]), '127.0.0.1', () => console.log('Ready to accept connections'));
`;

/** Starts the floor server (see FLOOR_SERVER). */
export async function startFloor(pin: Pinning | null): Promise<Target> {
  const port = await freePort();
  const [cmd, args] = pinned(pin?.server, process.execPath, ['-e', FLOOR_SERVER, String(port)]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(child, /Ready to accept connections/);
  return { name: 'node floor', port, pid: child.pid, stop: () => stopChild(child, 'SIGTERM') };
}

/** Starts the kv-server (compiled, or from the sources through the test hook) on a fresh data folder. */
export async function startKvServer(
  policy: string,
  o: { readonly store: string; readonly fsync: string },
  pin: Pinning | null,
): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-bench-'));
  const port = await freePort();
  // Run next to this file: compiled (dist/…/main.js), or from the sources through the test hook.
  const compiled = __filename.endsWith('.js');
  const main = path.join(__dirname, compiled ? 'main.js' : 'main.ts');
  const hook = compiled ? [] : ['-r', path.resolve(__dirname, '../../test/support/register.js')];
  const [cmd, args] = pinned(pin?.server, process.execPath, [
    ...hook,
    main,
    '--port',
    String(port),
    '--dir',
    dir,
    '--appendfsync',
    policy,
    '--store',
    o.store,
    '--fsync',
    o.fsync,
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(child, /Ready to accept connections/);
  return {
    name: `kv-server (${o.store}, ${policy}, fsync on the ${o.fsync})`,
    port,
    pid: child.pid,
    stop: async () => {
      await stopChild(child, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a real Redis with the AOF on, RDB off, in a fresh folder. */
export async function startRedis(policy: string, pin: Pinning | null): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-bench-'));
  const port = await freePort();
  const [cmd, args] = pinned(pin?.server, 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'yes',
    '--appendfsync',
    policy,
    '--dir',
    dir,
    '--daemonize',
    'no',
  ]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await waitForLine(child, /Ready to accept connections/);
  return {
    name: `redis (${policy})`,
    port,
    pid: child.pid,
    stop: async () => {
      // SHUTDOWN NOSAVE through redis-cli; the signal is the fallback if it does not go down.
      await run('redis-cli', ['-p', String(port), 'shutdown', 'nosave']).catch(() => '');
      await stopChild(child, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start: ${out}`));
    }, 120_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code}): ${out}`)));
  });
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill(signal);
  });
}

/** Longest a redis-benchmark run may take: a server that stops answering fails the bench rather than hanging it. */
const RUN_TIMEOUT_MS = 10 * 60 * 1000;

/** Runs a command to its end; rejects with its stderr, or after RUN_TIMEOUT_MS. */
export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024, timeout: RUN_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err === null) return resolve(stdout);
      const timedOut = err.killed === true && err.signal === 'SIGTERM';
      const why = timedOut
        ? `no result after ${RUN_TIMEOUT_MS / 1000} s (${args.join(' ')})`
        : stderr || err.message;
      reject(new Error(`${cmd}: ${why}`));
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** True when `cmd` is on the PATH. */
export function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
