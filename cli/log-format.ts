import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LogPoint } from '../adapters/common/log-point';
import type { ConsumerRecord, EventGroup, EventStore, JsonValue } from '../src/index';
import type { ReplayRecord } from '../src/store/replay-batch';
import { AofTools, createAofLog } from './formats/aof';
import { resolveTarget } from './target';

/*
 * What the commands (cli/commands/*) ask of a log, whatever its format: they parse their
 * arguments and print what is common, and every step that depends on the format goes through
 * LogTools, one implementation per adapter (cli/formats/*), chosen by what is at PATH. The
 * implementations print the format's own report (redis-check-aof's lines for an AOF log) and do
 * the work through the adapter's tools (adapters/<kind>/tools): the commands know no file name,
 * no record syntax and no SQL.
 */

/** Options of `appendonly check`. */
export interface CheckOptions {
  readonly fix?: boolean;
  readonly yes?: boolean;
}

/** Options of `appendonly strip`. */
export interface StripOptions {
  readonly type: string;
  readonly last?: boolean;
  readonly fromHistory?: boolean;
  /** Do not ask for confirmation. */
  readonly yes?: boolean;
}

/** One file of a log, for `info`. */
export interface LogFileInfo {
  readonly name: string;
  /** `base`, `incr`, `database`, `wal`. */
  readonly kind: string;
  readonly size: number;
}

/** A log found at PATH, with what the tool can do to it. */
export interface LogTools {
  /** The store kind: `aof`, `sqlite-wal`. */
  readonly kind: string;
  /** The folder or file the store uses (its `StoreOpenInfo.location`). */
  readonly location: string;
  /** The files the log is made of, with their sizes. */
  files(): LogFileInfo[];
  /**
   * The records in log order, read by the store's own reader and never repaired (info, cat,
   * convert's source, rewrite's type scan leave the log as they found it), with a progress
   * report labelled `label` on stderr.
   */
  records(label: string): AsyncIterable<readonly ReplayRecord[]>;
  /** `check [--fix]`: the format's own report; resolves with the exit code. */
  check(options: CheckOptions): Promise<number>;
  /** `strip`: removes event records; resolves with the exit code. */
  strip(options: StripOptions): Promise<number>;
  /** `truncate`: drops every command after `point`; resolves with the exit code. */
  truncate(point: LogPoint, yes?: boolean): Promise<number>;
  /** Refuses (exit 1) unless the log loads whole: `command` is what would be refused. */
  assertLoads(command: string): Promise<void>;
  /** A new, unopened store on the log (opening it takes the lock). */
  store(): EventStore;
  /** Bytes the store's replay reports progress against (0 when it reports none). */
  replaySize(): number;
  /** Backs up the whole log through `store`, open and holding the lock, and prints where. */
  backup(store: EventStore, command: string): Promise<void>;
  /**
   * The durable consumers' records (positions, parked events), read without changing the log
   * (AOF: their file, also while the app runs; SQLite: under the store's lock; PostgreSQL: the
   * consumers table).
   */
  consumerRecords(): Promise<readonly ConsumerRecord[]>;
  /** What `info` shows besides the files (a PostgreSQL log's head row), after `records`. */
  details?(): Record<string, string | number>;
}

/** A new log being written (`convert`'s target): a snapshot, then commands in order. */
export interface LogWriter {
  /**
   * The snapshot: every key up to `seq`, with the projections version it was built with (absent:
   * unversioned), recorded as the format's store records it. Before any command.
   */
  snapshot(seq: number, entries: Map<string, JsonValue>, projectionsVersion?: string): Promise<void>;
  /** One command, after the previous one. */
  group(g: EventGroup): Promise<void>;
  /** Makes the log durable and complete. */
  close(): Promise<void>;
  /** Gives up: removes what was written. */
  abort(): Promise<void>;
}

/**
 * The SQLite side of the tool, loaded only when a path needs it: its adapter loads
 * better-sqlite3 (an optional peer), so a user of AOF logs alone never needs it installed, and a
 * `.db` path without it fails with the adapter's one line (MissingDriverError).
 */
function sqliteFormat(): typeof import('./formats/sqlite') {
  return require('./formats/sqlite');
}

/**
 * The PostgreSQL side, loaded only for a `postgres://` path, for the same reason: pg is an
 * optional peer. Whether a path is one is told here, without loading it.
 */
function postgresFormat(): typeof import('./formats/postgres') {
  return require('./formats/postgres');
}

/** `postgres://…` or `postgresql://…`: a PostgreSQL log, never a file path. */
function isPostgresArg(arg: string): boolean {
  return /^postgres(ql)?:\/\//i.test(arg);
}

/**
 * How the tool names a path in its messages: a connection string without its password (the
 * adapter's redaction); a file path as the user wrote it.
 */
export function displayPath(arg: string): string {
  return isPostgresArg(arg) ? postgresFormat().displayPostgresPath(arg) : arg;
}

/** The log at `pathArg` (as the user wrote it: reports quote it); a usage error when there is none. */
export function openLog(pathArg: string): LogTools {
  if (isPostgresArg(pathArg)) {
    const pgf = postgresFormat();
    return new pgf.PostgresTools(pgf.parsePostgresPath(pathArg));
  }
  const target = resolveTarget(pathArg);
  return target.kind === 'aof' ? new AofTools(target, pathArg) : new (sqliteFormat().SqliteTools)(target);
}

/**
 * A new log at `toArg`: a `postgres://` connection string is a PostgreSQL log (a new or empty
 * log of that name), a `.db` file (or any existing file) is a SQLite-WAL store, anything else
 * a data folder for an AOF log. It must not exist or be empty: the tool never writes over a log.
 */
export async function createLog(
  toArg: string,
): Promise<{ readonly kind: string; readonly writer: LogWriter }> {
  if (isPostgresArg(toArg)) return postgresFormat().createPostgresLog(toArg);
  const to = path.resolve(toArg);
  return newLogKind(toArg) === 'sqlite-wal'
    ? sqliteFormat().createSqliteLog(to, toArg)
    : createAofLog(to, toArg);
}

/** The store kind {@link createLog} would make at `toArg`. */
export function newLogKind(toArg: string): 'aof' | 'sqlite-wal' | 'postgres' {
  if (isPostgresArg(toArg)) return 'postgres';
  const to = path.resolve(toArg);
  return to.endsWith('.db') || (fs.existsSync(to) && fs.statSync(to).isFile()) ? 'sqlite-wal' : 'aof';
}
