import 'reflect-metadata';
import { createApp, silentLogger } from 'appendonly';
import { IncompatibleSchemaError, PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures, replayAll } from 'appendonly/testing';
import { admin, usePostgres } from '../support/postgres';
import { stateOf } from './helpers';

/*
 * A log of schema 1 (before envelopes) on a real PostgreSQL: the first instance of this release
 * adds the envelope columns (no row rewritten) and bumps schema_version, leaving writable_by at 1
 * so that schema-1 code, which names its columns, keeps appending during a rolling deploy; a role
 * that may not ALTER the tables is refused with the statements to run as their owner.
 */
describe('PostgresStore: schema 1 → 2 (the envelope columns)', () => {
  const server = usePostgres();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  const open = (connectionString: string, schema: string) =>
    createApp({
      ...fixtures.conformanceClasses,
      store: new PostgresStore({ connectionString, schema }),
      logger: silentLogger,
    });

  /** The tables as schema 1 made them, with two commands of the default log, written by schema-1 SQL. */
  async function schema1(schema: string): Promise<void> {
    await admin(url, `CREATE SCHEMA ${schema}`);
    await admin(url, `CREATE TABLE ${schema}.meta (key text PRIMARY KEY, value text NOT NULL)`);
    await admin(
      url,
      `CREATE TABLE ${schema}.heads (log text PRIMARY KEY, seq bigint NOT NULL, batch uuid,
         snapshot_seq bigint NOT NULL DEFAULT 0, snapshot_id bigint NOT NULL DEFAULT 0)`,
    );
    await admin(
      url,
      `CREATE TABLE ${schema}.events (log text NOT NULL, seq bigint NOT NULL, time bigint NOT NULL,
         type text NOT NULL, data text NOT NULL, n integer NOT NULL, batch uuid NOT NULL, PRIMARY KEY (log, seq))`,
    );
    await admin(
      url,
      `CREATE TABLE ${schema}.snapshot (log text NOT NULL, id bigint NOT NULL, ord integer NOT NULL,
         key text NOT NULL, value text NOT NULL, PRIMARY KEY (log, id, ord))`,
    );
    await admin(
      url,
      `INSERT INTO ${schema}.meta VALUES ('format', 'appendonly-postgres'), ('schema_version', '1'), ('writable_by', '1')`,
    );
    await admin(url, `INSERT INTO ${schema}.heads (log, seq) VALUES ('default', 3)`);
    await admin(
      url,
      `INSERT INTO ${schema}.events (log, seq, time, type, data, n, batch) VALUES
         ('default', 1, 1700000000123, 'SET', '{"key":"a","value":1}', 1, gen_random_uuid()),
         ('default', 2, 1700000000456, 'SET', '{"key":"b","value":2}', 2, gen_random_uuid()),
         ('default', 3, 1700000000456, 'Counted', '{"key":"n","by":4}', 0, gen_random_uuid())`,
    );
  }

  it('migrates at open; old rows read without envelope; schema-1 SQL still appends beside it', async () => {
    // given a schema-1 log
    await schema1('old');
    // when this release opens it and runs a command with metadata
    const app = await open(url, 'old');
    expect(stateOf(app)).toEqual({ a: 1, b: 2, n: 4 });
    await app.execute(new fixtures.Put('c', 3), { metadata: { correlationId: 'r-1' } });
    await app.close();
    // then the schema is 2, still writable by schema 1
    const meta = await admin(url, 'SELECT key, value FROM old.meta ORDER BY key');
    expect(Object.fromEntries(meta.rows.map((r) => [r.key, r.value]))).toMatchObject({
      schema_version: '2',
      writable_by: '1',
    });
    // and an old release's INSERT (its own column list) still lands, and reads as a legacy event
    await admin(url, "UPDATE old.heads SET seq = 5 WHERE log = 'default'");
    await admin(
      url,
      `INSERT INTO old.events (log, seq, time, type, data, n, batch)
       VALUES ('default', 5, 1700000000999, 'SET', '{"key":"d","value":4}', 1, gen_random_uuid())`,
    );
    const records = await replayAll(new PostgresStore({ connectionString: url, schema: 'old' }));
    expect(records[0]).toEqual({
      kind: 'group',
      seq: 1,
      time: 1_700_000_000_123,
      events: [{ type: 'SET', data: { key: 'a', value: 1 } }],
    });
    expect(records[2]).toEqual(
      expect.objectContaining({ seq: 4, ids: [expect.any(String)], metadata: { correlationId: 'r-1' } }),
    );
    expect(records[3]).toEqual({
      kind: 'group',
      seq: 5,
      time: 1_700_000_000_999,
      events: [{ type: 'SET', data: { key: 'd', value: 4 } }],
    });
  });

  it('refuses a role that may not add the columns, naming the statements for the owner', async () => {
    // given a schema-1 log and a role with row rights only
    await schema1('managed1');
    const role = `env_role_${process.pid}_${Date.now()}`;
    await admin(url, `CREATE ROLE ${role} LOGIN`);
    await admin(url, `GRANT USAGE ON SCHEMA managed1 TO ${role}`);
    await admin(url, `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA managed1 TO ${role}`);
    const asApp = new URL(url);
    asApp.username = role;
    try {
      // when it opens the log, then it is refused, with the ALTER to run
      const opened = open(asApp.toString(), 'managed1');
      await expect(opened).rejects.toBeInstanceOf(IncompatibleSchemaError);
      await expect(opened).rejects.toThrow(
        /run as the tables' owner: ALTER TABLE "managed1"\.events ADD COLUMN IF NOT EXISTS id text/,
      );
      // and once the owner has run it (here: the admin opens it once), the role works
      await (await open(url, 'managed1')).close();
      const app = await open(asApp.toString(), 'managed1');
      expect(stateOf(app)).toEqual({ a: 1, b: 2, n: 4 });
      await app.close();
    } finally {
      await admin(url, `DROP OWNED BY ${role}`);
      await admin(url, `DROP ROLE ${role}`);
    }
  });
});
