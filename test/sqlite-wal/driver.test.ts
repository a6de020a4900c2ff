import RealDatabase from 'better-sqlite3';
import { MissingDriverError } from 'appendonly';
import type { SqliteDatabase, SqliteDriver } from 'appendonly/adapters/sqlite-wal';
import { driverMessage, loadDriver } from '../../adapters/common/drivers';

/** A require that fails as Node's does when `id` is not installed. */
function notFound(id: string): () => never {
  return () => {
    throw Object.assign(new Error(`Cannot find module '${id}'\nRequire stack:\n- /app/x.js`), {
      code: 'MODULE_NOT_FOUND',
    });
  };
}

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error('it did not throw');
}

describe('optional drivers', () => {
  it('a real better-sqlite3 Database is a SqliteDatabase, and its constructor a SqliteDriver', () => {
    // The assignments are the test: tsc checks that the structural types fit the driver's own.
    const Driver: SqliteDriver = RealDatabase;
    const db: SqliteDatabase = new Driver(':memory:');
    const real: SqliteDatabase = new RealDatabase(':memory:');
    expect(db.prepare('SELECT 1').pluck().get()).toBe(1);
    expect(real.transaction((n: number) => n + 1)(1)).toBe(2);
    db.close();
    real.close();
  });

  it('a driver that is not installed: one line naming `npm install`', () => {
    const err = thrown(() => loadDriver('better-sqlite3', notFound('better-sqlite3')));
    expect(err).toBeInstanceOf(MissingDriverError);
    const e = err as MissingDriverError;
    expect(e.code).toBe('MISSING_DRIVER');
    expect(e.problem).toBe('missing');
    expect(e.message).toBe(
      'appendonly/adapters/sqlite-wal needs the better-sqlite3 package, which is not installed: run `npm install better-sqlite3`',
    );
    expect((e.cause as Error).message).toMatch(/Cannot find module 'better-sqlite3'/);
  });

  it('a driver whose native build was skipped: one line naming approve-scripts and rebuild', () => {
    // better-sqlite3 itself, pointed at a binding that does not exist (as after `--ignore-scripts`)
    const err = thrown(() =>
      loadDriver<typeof RealDatabase>(
        'better-sqlite3',
        () => RealDatabase,
        (Driver) => new Driver(':memory:', { nativeBinding: '/nonexistent/better_sqlite3.node' }).close(),
      ),
    ) as MissingDriverError;
    expect(err).toBeInstanceOf(MissingDriverError);
    expect(err.problem).toBe('not-built');
    expect(err.message).toBe(
      'appendonly/adapters/sqlite-wal: better-sqlite3 is installed but its native build is missing (npm skipped its install script): ' +
        'run `npm approve-scripts better-sqlite3 && npm rebuild better-sqlite3`',
    );
    // and the `bindings` package's own message, which is what a skipped build gives
    const bindings = thrown(() =>
      loadDriver(
        'better-sqlite3',
        () => RealDatabase,
        () => {
          throw new Error('Could not locate the bindings file. Tried:\n → /app/build/better_sqlite3.node');
        },
      ),
    ) as MissingDriverError;
    expect(bindings.problem).toBe('not-built');
  });

  it('a driver built for another Node: one line naming `npm rebuild`', () => {
    const err = thrown(() =>
      loadDriver(
        'better-sqlite3',
        () => RealDatabase,
        () => {
          throw new Error('was compiled against a different Node.js version using NODE_MODULE_VERSION 115.');
        },
      ),
    ) as MissingDriverError;
    expect(err.problem).toBe('wrong-abi');
    expect(err.message).toMatch(
      /^appendonly\/adapters\/sqlite-wal: better-sqlite3 was built for another Node\.js version \(v[\d.]+ here\): run `npm rebuild better-sqlite3`$/,
    );
  });

  it('anything else is the driver’s own error, rethrown as it is', () => {
    // a module the driver requires is missing: a broken install, not a missing driver
    const dependency = thrown(() => loadDriver('better-sqlite3', notFound('bindings')));
    expect(dependency).not.toBeInstanceOf(MissingDriverError);
    const own = new Error('SQLITE_CANTOPEN');
    const probe = thrown(() =>
      loadDriver(
        'better-sqlite3',
        () => RealDatabase,
        () => {
          throw own;
        },
      ),
    );
    expect(probe).toBe(own);
  });

  it('every message is one line', () => {
    for (const problem of ['missing', 'not-built', 'wrong-abi'] as const)
      expect(driverMessage('better-sqlite3', problem)).not.toMatch(/\n/);
  });
});
