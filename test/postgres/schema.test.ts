import 'reflect-metadata';
import { ConfigError, createApp, type Logger } from 'appendonly';
import { IncompatibleSchemaError, PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import pg from 'pg';
import { redact } from '../../adapters/postgres/connection';
import { admin, usePostgres } from '../support/postgres';
import { stateOf } from './helpers';

/** Lines a logger received, to check that no password reaches them. */
function recordingLogger(lines: string[]): Logger {
  return { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

describe('PostgresStore: schema, options, credentials', () => {
  const server = usePostgres();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  const openApp = async (options: ConstructorParameters<typeof PostgresStore>[0], logger?: Logger) =>
    createApp({
      ...fixtures.conformanceClasses,
      store: new PostgresStore(options),
      logger: logger ?? recordingLogger([]),
    });

  it('creates its tables on first open in their own schema, with the schema version', async () => {
    // when
    const app = await openApp({ connectionString: url, schema: 'fresh' });
    await app.execute(new fixtures.Put('a', 1));
    await app.close();
    // then
    const meta = await admin(url, 'SELECT key, value FROM fresh.meta ORDER BY key');
    expect(Object.fromEntries(meta.rows.map((r) => [r.key, r.value]))).toEqual({
      format: 'appendonly-postgres',
      schema_version: '2',
      writable_by: '1',
    });
    const head = await admin(url, "SELECT seq::int AS seq FROM fresh.heads WHERE log = 'default'");
    expect(head.rows).toEqual([{ seq: 1 }]);
  });

  it('refuses a foreign table of the same name, and leaves it untouched', async () => {
    // given: someone else's "events" table
    await admin(url, 'CREATE SCHEMA theirs');
    await admin(url, 'CREATE TABLE theirs.events (id int)');
    await admin(url, 'INSERT INTO theirs.events VALUES (42)');
    // when
    const opened = openApp({ connectionString: url, schema: 'theirs' });
    // then
    await expect(opened).rejects.toBeInstanceOf(IncompatibleSchemaError);
    await expect(opened).rejects.toThrow(/is not an appendonly store.*refusing to touch it/);
    expect((await admin(url, 'SELECT id FROM theirs.events')).rows).toEqual([{ id: 42 }]);
    const tables = await admin(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'theirs'");
    expect(tables.rows).toEqual([{ tablename: 'events' }]);
  });

  it('refuses a foreign consumers table in its schema at open, and leaves it untouched', async () => {
    // given: an application's own `consumers` table in the schema the store is given
    await admin(url, 'CREATE SCHEMA shop');
    await admin(url, 'CREATE TABLE shop.consumers (id serial PRIMARY KEY, email text NOT NULL)');
    await admin(url, "INSERT INTO shop.consumers (email) VALUES ('a@example.com')");
    // when: a store opens there
    const opened = openApp({ connectionString: url, schema: 'shop', log: 'orders' });
    // then: refused, naming the table, before anything was made beside it
    await expect(opened).rejects.toBeInstanceOf(IncompatibleSchemaError);
    await expect(opened).rejects.toThrow(
      /schema shop: has a consumers table that is not appendonly’s \(columns: id, email; no log, name, position, parked\)/,
    );
    const tables = await admin(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'shop' ORDER BY 1");
    expect(tables.rows.map((r) => r.tablename)).toEqual(['consumers']);
    const columns = await admin(
      url,
      "SELECT column_name FROM information_schema.columns WHERE table_schema = 'shop' AND table_name = 'consumers' ORDER BY ordinal_position",
    );
    expect(columns.rows.map((r) => r.column_name)).toEqual(['id', 'email']);
    expect((await admin(url, 'SELECT email FROM shop.consumers')).rows).toEqual([{ email: 'a@example.com' }]);
  });

  it('refuses a schema migrated for a newer appendonly', async () => {
    await (await openApp({ connectionString: url, schema: 'newer' })).close();
    await admin(url, "UPDATE newer.meta SET value = '99' WHERE key = 'writable_by'");
    await expect(openApp({ connectionString: url, schema: 'newer' })).rejects.toThrow(/upgrade appendonly/);
  });

  it('uses a schema an administrator made beforehand: the application role needs no CREATE right', async () => {
    // given: an administrator made the schema (here by opening it once), and a role that may only read and write rows
    await (await openApp({ connectionString: url, schema: 'managed', log: 'setup' })).close();
    // roles belong to the whole server (DATABASE_URL may name a shared one): a name of this run
    const role = `app_role_${process.pid}_${Date.now()}`;
    await admin(url, `CREATE ROLE ${role} LOGIN`);
    await admin(url, `GRANT USAGE ON SCHEMA managed TO ${role}`);
    await admin(url, `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA managed TO ${role}`);
    const asApp = new URL(url);
    asApp.username = role;
    // when: the application opens a new log in it, writes and reads
    const app = await openApp({ connectionString: asApp.toString(), schema: 'managed', log: 'orders' });
    await app.execute(new fixtures.Put('order:1', { total: 5 }));
    await app.close();
    const again = await openApp({ connectionString: asApp.toString(), schema: 'managed', log: 'orders' });
    // then
    expect(stateOf(again)).toEqual({ 'order:1': { total: 5 } });
    await again.close();
    // and where it would have to create, it is refused by PostgreSQL, not by a half-made schema
    await expect(openApp({ connectionString: asApp.toString(), schema: 'elsewhere' })).rejects.toMatchObject({
      code: '42501',
    });
    await admin(url, `DROP OWNED BY ${role}`);
    await admin(url, `DROP ROLE ${role}`);
  });

  it('creates its tables in an empty schema an administrator made for the role, with no CREATE right on the database', async () => {
    // given: a role that owns an empty schema and nothing else
    const role = `schema_owner_${process.pid}_${Date.now()}`;
    await admin(url, `CREATE ROLE ${role} LOGIN`);
    await admin(url, `CREATE SCHEMA owned AUTHORIZATION ${role}`);
    const asApp = new URL(url);
    asApp.username = role;
    try {
      // when: the application opens a log there, writes, and opens it again
      const app = await openApp({ connectionString: asApp.toString(), schema: 'owned', log: 'orders' });
      await app.execute(new fixtures.Put('order:1', { total: 5 }));
      await app.close();
      const again = await openApp({ connectionString: asApp.toString(), schema: 'owned', log: 'orders' });
      // then: its tables are in that schema, and hold what it wrote
      expect(stateOf(again)).toEqual({ 'order:1': { total: 5 } });
      await again.close();
      const { rows } = await admin(
        url,
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'owned'",
      );
      expect(rows[0].n).toBe(4);
    } finally {
      await admin(url, `DROP SCHEMA owned CASCADE`);
      await admin(url, `DROP OWNED BY ${role}`);
      await admin(url, `DROP ROLE ${role}`);
    }
  });

  it('never shows the password of its connection string: stats, log lines, errors', async () => {
    // given: trust authentication accepts any password, so one can be given and must be hidden
    const withPassword = new URL(url);
    withPassword.password = 'hunter2-secret';
    const lines: string[] = [];
    const app = await openApp(
      { connectionString: withPassword.toString(), log: 'secret' },
      recordingLogger(lines),
    );
    await app.execute(new fixtures.Put('a', 1));
    // when: its connections are cut under it, so that it logs and fails
    await admin(
      url,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres' AND pid <> pg_backend_pid() AND datname = current_database()",
    );
    const outcome = await app.execute(new fixtures.Put('b', 2)).catch((err: Error) => err);
    // then
    const shown = JSON.stringify([app.stats(), lines, outcome instanceof Error ? outcome.message : outcome]);
    expect(shown).toContain('***');
    expect(shown).not.toContain('hunter2-secret');
    await app.close();
  });

  it('hides a password in every form a connection string takes', () => {
    expect(redact('postgres://u:p%40ss@h:5432/db')).toBe('postgres://u:***@h:5432/db');
    expect(redact('postgresql://h/db?user=u&password=secret&sslmode=require')).toBe(
      'postgresql://h/db?user=u&password=***&sslmode=require',
    );
    expect(redact("host=/tmp password='se cret' dbname=x")).toBe('host=/tmp password=*** dbname=x');
    expect(redact('host=h password=secret')).toBe('host=h password=***');
    // pg takes these too: another scheme, an unencoded @ or space in the password
    expect(redact('socket://user:secret@/var/run/postgresql?db=x')).toBe(
      'socket://user:***@/var/run/postgresql?db=x',
    );
    expect(redact('postgres://user:p@ss@host/db')).toBe('postgres://user:***@host/db');
    expect(redact('postgres://user:sec ret@host/db')).toBe('postgres://user:***@host/db');
    expect(redact('postgres://user:pa#ss@host/db')).toBe('postgres://user:***@host/db');
    // in a message, up to the line's end at most; a URL without a password is left as it is
    expect(redact('cannot open postgres://u:x@h/db\nat postgres://v@h/db')).toBe(
      'cannot open postgres://u:***@h/db\nat postgres://v@h/db',
    );
  });

  it('checks its options at construction', () => {
    expect(() => new PostgresStore({} as never)).toThrow(ConfigError);
    expect(() => new PostgresStore({ connectionString: url, schema: 'no-dashes' })).toThrow(
      /plain identifier/,
    );
    expect(() => new PostgresStore({ connectionString: url, appendfsync: 'sometimes' as never })).toThrow(
      ConfigError,
    );
    expect(() => new PostgresStore({ connectionString: url, colour: 'blue' } as never)).toThrow(
      /unknown option "colour"/,
    );
  });

  it('works on a pg.Pool the user owns, and leaves it open on close', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 4 });
    try {
      const app = await openApp({ pool, log: 'own-pool' });
      await app.execute(new fixtures.Put('a', 1));
      await app.close();
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await pool.end();
    }
  });
});
