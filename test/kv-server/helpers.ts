import 'reflect-metadata';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type FsyncPolicy, silentLogger } from 'appendonly';
import { KvServer, type KvServerOptions } from '../../examples/kv-server/server';
import {
  dataLocation,
  type StoreFactory,
  type StoreKind,
  storeFactory,
} from '../../examples/kv-server/store';

export const root = path.resolve(__dirname, '../..');

/** A fresh temporary folder, removed by `cleanup`. */
export function tempDir(prefix = 'kv-server-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** An in-process server on a free port, loaded and ready. */
export interface Running {
  readonly server: KvServer;
  readonly port: number;
  readonly dir: string;
  readonly printed: string[];
  stop(): Promise<void>;
}

export async function startServer(
  options: Partial<KvServerOptions> & {
    kind?: StoreKind;
    appendfsync?: FsyncPolicy;
    dir?: string;
    openStore?: StoreFactory;
  } = {},
): Promise<Running> {
  const kind = options.kind ?? 'aof';
  const dir = options.dir ?? tempDir();
  const printed: string[] = [];
  const server = new KvServer({
    port: 0,
    appendfsync: options.appendfsync ?? 'everysec',
    storeKind: kind,
    // given by the caller for a store whose location is not in `dir` (postgres)
    location: options.location ?? dataLocation(kind, dir),
    logger: silentLogger,
    print: (line) => printed.push(line),
    ...options,
    openStore: options.openStore ?? storeFactory(kind, dir),
  });
  const port = await server.listen();
  await server.load();
  return {
    server,
    port,
    dir,
    printed,
    stop: async () => {
      await server.close();
      if (options.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs redis-cli against `port`; resolves with its stdout (redis-cli exits 0 even on error replies). */
export function redisCli(port: number, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'redis-cli',
      ['-p', String(port), ...args],
      { timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr}`));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** Sends raw bytes on a new connection; resolves with every byte received until the server closes or `ms` pass. */
export function rawExchange(
  port: number,
  bytes: Buffer | string,
  ms = 2000,
): Promise<{ reply: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let reply = '';
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ reply, closedByServer });
    };
    const timer = setTimeout(() => finish(false), ms);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (d) => (reply += d.toString('utf8')));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
  });
}

/** A server in its own process, run from the TypeScript sources. */
export interface Child {
  readonly child: ChildProcess;
  readonly port: number;
  /** Everything printed so far. */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<number | null>;
}

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Starts `examples/kv-server/main.ts` in a child; resolves once it prints `waitFor` (default: it is ready). */
export async function spawnServer(
  args: readonly string[],
  waitFor: RegExp = /Ready to accept connections/,
): Promise<Child> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '-r',
      path.join(root, 'test/support/register.js'),
      path.join(root, 'examples/kv-server/main.ts'),
      '--port',
      String(port),
      ...args,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!waitFor.test(out)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the kv-server did not print ${waitFor}: ${out}`);
    }
    await sleep(10);
  }
  return { child, port, output: () => out, exited };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
