import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pg from 'pg';

/**
 * A PostgreSQL server for the PostgreSQL suites and the PostgreSQL benchmark, no Docker:
 * `DATABASE_URL` when it is set, otherwise a throwaway cluster of the caller (initdb in a
 * temporary folder, `-A trust`, listening on a Unix socket in that folder only), stopped and
 * removed at the end. PostgreSQL refuses to run as root: as root, initdb and pg_ctl run as the
 * `postgres` user.
 *
 * No jest here (the benchmark, built by `tsc -p tsconfig.build.json`, imports this module);
 * the suites' before/after hooks are in `./postgres`.
 */
export interface PostgresServer {
  /** A connection string to the server's `postgres` database. */
  readonly url: string;
  /** True for our own cluster (restart works); false with DATABASE_URL. */
  readonly local: boolean;
  /** A new, empty database; returns its connection string. */
  createDatabase(): Promise<string>;
  /** `pg_ctl restart` (own cluster only): every connection is cut, the server is back when it resolves. */
  restart(): Promise<void>;
  /** Stops the server (own cluster only), while `start` brings it back. */
  stopServer(): void;
  startServer(): void;
  /** Stops and removes the cluster; with DATABASE_URL, drops the databases it made. */
  stop(): Promise<void>;
}

/** What to install or set, in one line, when no PostgreSQL can be found. */
export const NO_POSTGRES =
  'no PostgreSQL for the PostgreSQL tests and benchmark: install the server (apt-get install postgresql-15; pg_config --bindir must name initdb and pg_ctl) or set DATABASE_URL=postgres://user:password@host/database';

let counter = 0;

/** Starts (or finds) the server; `local` insists on an own cluster (the restart tests). */
export async function startPostgres(options: { local?: boolean } = {}): Promise<PostgresServer> {
  const given = process.env.DATABASE_URL;
  if (given !== undefined && given !== '' && options.local !== true) return remote(given);
  return startCluster();
}

function remote(url: string): PostgresServer {
  const made: string[] = [];
  return {
    url,
    local: false,
    createDatabase: async () => {
      const name = `appendonly_test_${process.pid}_${++counter}`;
      await admin(url, `CREATE DATABASE ${name}`);
      made.push(name);
      return withDatabase(url, name);
    },
    restart: () => Promise.reject(new Error('restart needs an own cluster (unset DATABASE_URL)')),
    stopServer: () => {
      throw new Error('needs an own cluster');
    },
    startServer: () => {
      throw new Error('needs an own cluster');
    },
    stop: async () => {
      for (const name of made)
        await admin(url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    },
  };
}

function bindir(): string {
  try {
    const dir = execFileSync('pg_config', ['--bindir'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_ctl'))) return dir;
  } catch {
    // no pg_config: fall through
  }
  throw new Error(NO_POSTGRES);
}

async function startCluster(): Promise<PostgresServer> {
  const bin = bindir();
  const root = process.getuid?.() === 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'aopg-'));
  if (root) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  const run = (tool: string, args: string[]) => {
    const cmd = root ? 'runuser' : path.join(bin, tool);
    const argv = root ? ['-u', 'postgres', '--', path.join(bin, tool), ...args] : args;
    execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  /** As `run`, without blocking the event loop: the clients under test go on while it runs. */
  const runAsync = (tool: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const cmd = root ? 'runuser' : path.join(bin, tool);
      const argv = root ? ['-u', 'postgres', '--', path.join(bin, tool), ...args] : args;
      execFile(cmd, argv, { cwd: dir }, (err) => (err ? reject(err) : resolve()));
    });
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const serverOptions = `-c listen_addresses='' -k ${dir} -c max_connections=200 -c shared_buffers=32MB`;
  // -l on every start: a server without it keeps pg_ctl's stdout, and the call never returns.
  const logFile = path.join(dir, 'server.log');
  const start = () => run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-o', serverOptions, 'start']);
  let running = false;
  const stopNow = () => {
    if (!running) return;
    running = false;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
  };
  start();
  running = true;
  // A test run killed half-way must not leave a server behind.
  const onExit = () => stopNow();
  process.once('exit', onExit);
  const url = `postgresql://postgres@localhost/postgres?host=${encodeURIComponent(dir)}`;
  return {
    url,
    local: true,
    createDatabase: async () => {
      const name = `t${process.pid}_${++counter}`;
      await admin(url, `CREATE DATABASE ${name}`);
      return withDatabase(url, name);
    },
    restart: async () => {
      await runAsync('pg_ctl', [
        '-D',
        data,
        '-l',
        logFile,
        '-m',
        'fast',
        '-w',
        '-o',
        serverOptions,
        'restart',
      ]);
    },
    stopServer: () => {
      run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      running = false;
    },
    startServer: () => {
      start();
      running = true;
    },
    stop: async () => {
      process.removeListener('exit', onExit);
      stopNow();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `url` with its database replaced by `name`. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** One statement on a short-lived connection (CREATE DATABASE cannot run in a transaction). */
export async function admin(url: string, sql: string, values?: unknown[]): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}
