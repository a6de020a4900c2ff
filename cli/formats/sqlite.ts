import * as fs from 'node:fs';
import type { SqliteDatabase } from '../../adapters/sqlite-wal/driver';
import type { LogPoint } from '../../adapters/common/log-point';
import { IncompatibleDatabaseError } from '../../adapters/sqlite-wal/errors';
import { replayDatabase } from '../../adapters/sqlite-wal/replay';
import { SqliteWalStore } from '../../adapters/sqlite-wal/store';
import { backupDatabase } from '../../adapters/sqlite-wal/tools/backup';
import { cutEventsToSideFile } from '../../adapters/sqlite-wal/tools/cut-tail';
import { DatabaseWriter } from '../../adapters/sqlite-wal/tools/database-writer';
import { lockDatabase } from '../../adapters/sqlite-wal/tools/lock';
import { eventsShape, integrityProblems } from '../../adapters/sqlite-wal/tools/structure';
import { planTruncate, truncateEvents } from '../../adapters/sqlite-wal/tools/truncate';
import { loadConsumers, saveConsumer } from '../../adapters/sqlite-wal/consumers';
import { carryPositions, clampPositions } from '../consumer-positions';
import { findTornTail } from '../../adapters/sqlite-wal/torn-tail';
import {
  CorruptLogError,
  type EventStore,
  PersistenceError,
  replaySink,
  StoreLockedError,
} from '../../src/index';
import type { ReplayRecord } from '../../src/store/replay-batch';
import type { ConsumerRecord } from '../../src/index';
import { EXIT_INVALID, EXIT_OK, insideCommand, invalid, usage } from '../errors';
import type { CheckOptions, LogFileInfo, LogTools, LogWriter } from '../log-format';
import { confirmChange, note, say } from '../output';
import { lockRefused, toolContext, withStoreLocked } from '../stores';
import type { SqliteTarget } from '../target';

/*
 * The tool on a SQLite-WAL store. What the store's API does not do (look without repairing: the
 * store cuts a torn command as it opens; cut or back up under the lock) goes through a
 * connection of the tool's own holding the store's lock (lockDatabase), so a running app and
 * the tool never both hold the file; the rest goes through SqliteWalStore itself.
 */
export class SqliteTools implements LogTools {
  readonly kind = 'sqlite-wal';
  readonly location: string;

  constructor(private readonly target: SqliteTarget) {
    this.location = target.file;
  }

  files(): LogFileInfo[] {
    const file = this.target.file;
    const wal = `${file}-wal`;
    return [
      { name: file, kind: 'database', size: fs.statSync(file).size },
      { name: wal, kind: 'wal', size: fs.existsSync(wal) ? fs.statSync(wal).size : 0 },
    ];
  }

  async *records(_label: string): AsyncGenerator<readonly ReplayRecord[]> {
    const file = this.target.file;
    // The store's open would cut a torn command: refuse to read rather than let it.
    const probe = lock(file, 'read the store');
    try {
      const torn = findTornTail(probe);
      if (torn !== null)
        throw invalid(
          `${file} ends inside the command at seq ${torn.seq}: run \`appendonly check ${file} --fix\` first`,
        );
    } finally {
      probe.close();
    }
    const store = this.store();
    try {
      await store.open(toolContext());
    } catch (err) {
      if (err instanceof StoreLockedError) throw invalid(err.message);
      throw err;
    }
    try {
      yield* replayDatabase(store.database, file, toolContext().logger, { rowsRead: 0 });
    } finally {
      await store.close();
    }
  }

  /** SQLite's integrity check, the command structure, then a replay through the store. */
  async check(options: CheckOptions): Promise<number> {
    const file = this.target.file;
    const db = lock(file, 'check the store');
    let snapshotSeq: number;
    try {
      const problems = integrityProblems(db);
      if (problems !== null) {
        say(`${file}: SQLite integrity check failed: ${problems.join('; ')}`);
        return EXIT_INVALID;
      }
      const shape = eventsShape(db);
      snapshotSeq = shape.snapshotSeq;
      if (shape.gap) {
        say(
          `${file}: not valid: the events table has ${shape.eventsAbove} events above the snapshot (seq ${shape.snapshotSeq}) up to seq ${shape.lastSeq}: some are missing`,
        );
        return EXIT_INVALID;
      }
      const torn = shape.torn;
      if (torn !== null) {
        const good = torn.seq - 1;
        say(
          `${file}: not valid: the events table ends inside the command at seq ${torn.seq} (${torn.present} of its events); the last good sequence is ${good}`,
        );
        if (!options.fix) {
          say(`run \`appendonly check ${file} --fix\` to remove the torn command (a backup is kept)`);
          return EXIT_INVALID;
        }
        const question = `This will remove the ${torn.present} events from seq ${torn.seq} (saved to a side file). Continue?`;
        if (!(await confirmChange(options.yes, 'check --fix', 'cut', question))) return EXIT_INVALID;
        await backup(db, file, 'check-fix');
        note(`cut events saved to: ${cutEventsToSideFile(db, file, torn.seq)}`);
        say(`removed the torn command: ${file} now ends at seq ${good}`);
        await carryPositions(
          { load: () => loadConsumers(db), save: (r) => saveConsumer(db, r) },
          (records) => clampPositions(records, good),
          say,
        );
      }
    } finally {
      db.close();
    }
    // The structure is sound: now the store's own reader decodes every row.
    const store = this.store();
    try {
      await store.open(toolContext());
    } catch (err) {
      if (err instanceof StoreLockedError) throw invalid(`cannot check ${file}: ${err.message}`);
      throw err;
    }
    let last = 0;
    try {
      const sink = replaySink({
        snapshot: (seq) => {
          last = seq;
        },
        group: (g) => {
          last = g.seq + g.events.length - 1;
        },
      });
      await store.replay(sink);
    } catch (err) {
      if (err instanceof CorruptLogError) {
        say(`${file}: not valid: ${err.message}; the last good sequence is ${last}`);
        return EXIT_INVALID;
      }
      throw err;
    } finally {
      await store.close();
    }
    say(`${file}: valid (snapshot up to seq ${snapshotSeq}, last sequence ${last})`);
    return EXIT_OK;
  }

  async strip(): Promise<number> {
    throw usage(
      'strip works on AOF logs (a .db numbers every event and cannot lose one in the middle): ' +
        '`appendonly convert` it to an AOF folder, strip there, and convert back',
    );
  }

  async truncate(point: LogPoint, yes?: boolean): Promise<number> {
    const file = this.target.file;
    const db = lock(file, 'truncate the store');
    try {
      const plan = planTruncate(db, point);
      switch (plan.kind) {
        case 'before-snapshot':
          throw invalid(
            `seq ${plan.seq} is before the snapshot (it covers up to seq ${plan.snapshotSeq}): the commands before it were compacted away`,
          );
        case 'inside-command':
          throw insideCommand(plan.seq, plan.first, plan.last);
        case 'no-times':
          throw invalid('the store holds no event times, so it cannot be cut by time; use --to-seq');
        case 'nothing':
          say(`nothing to cut: the store ends at seq ${plan.lastSeq}, before the point`);
          return EXIT_OK;
        case 'cut': {
          const question = `This will drop seq ${plan.from}..${plan.lastSeq} from ${file} (a backup is kept). Continue?`;
          if (!(await confirmChange(yes, 'truncate', 'truncate', question))) return EXIT_INVALID;
          await backup(db, file, 'truncate');
          // Positions first, as on AOF: a crash between leaves them at or before the new end.
          await carryPositions(
            { load: () => loadConsumers(db), save: (r) => saveConsumer(db, r) },
            (records) => clampPositions(records, plan.from - 1),
            say,
          );
          truncateEvents(db, plan);
          say(`truncated the store before seq ${plan.from}: dropped seq ${plan.from}..${plan.lastSeq}`);
          return EXIT_OK;
        }
      }
    } finally {
      db.close();
    }
  }

  async assertLoads(): Promise<void> {
    // Nothing to do first: `records` refuses a torn tail, and the store's open checks the schema.
  }

  consumerRecords(): Promise<readonly ConsumerRecord[]> {
    return withStoreLocked(this.store(), 'read the consumers', (store) =>
      (store as SqliteWalStore).loadConsumers(),
    );
  }

  store(): SqliteWalStore {
    return new SqliteWalStore({ file: this.target.file, autoRewritePercentage: 0 });
  }

  replaySize(): number {
    return 0;
  }

  async backup(store: EventStore, command: string): Promise<void> {
    await backup((store as SqliteWalStore).database, this.target.file, command);
  }
}

/** A new SQLite-WAL store at `to` for `convert`: the file must not exist or be empty. */
export async function createSqliteLog(
  to: string,
  toArg: string,
): Promise<{ readonly kind: string; readonly writer: LogWriter }> {
  if (fs.existsSync(to) && fs.statSync(to).size > 0)
    throw usage(`${toArg}: exists and is not empty; refusing to overwrite it (convert writes to a new file)`);
  return { kind: 'sqlite-wal', writer: await DatabaseWriter.create(to, toolContext().logger) };
}

/** The tool's own connection holding the store's lock; exit 2 for a file that is not a store, 1 when it is locked. */
function lock(file: string, what: string): SqliteDatabase {
  try {
    return lockDatabase(file);
  } catch (err) {
    if (err instanceof PersistenceError)
      throw usage(
        `${file}: cannot open: ${err.cause instanceof Error ? err.cause.message : String(err.cause)}`,
      );
    if (err instanceof IncompatibleDatabaseError) throw usage(err.message);
    if (err instanceof StoreLockedError) throw lockRefused(what, err);
    throw err;
  }
}

/** A backup of the store beside it, printed. */
async function backup(db: SqliteDatabase, file: string, command: string): Promise<void> {
  const to = await backupDatabase(db, file, command);
  note(`backup: ${to} (to undo, stop the app and copy it over ${file})`);
}
