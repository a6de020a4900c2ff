import { CorruptLogError, recordingSink } from 'appendonly';
import { tablesOf } from '../../adapters/postgres/schema';
import { admin, usePostgres } from '../support/postgres';
import { bareStore } from './helpers';

/**
 * Rows that no append writes (edited by hand, a restore gone wrong) are damage, named with the
 * seq where the grouping breaks, by the replay and by a consumer's read alike: never regrouped
 * into commands the log did not have.
 */
describe('PostgresStore: a log whose rows do not make whole commands', () => {
  const server = usePostgres();
  const t = tablesOf('appendonly');
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  /** Commands of 1, 3 and 1 events (seqs 1, 2–4, 5), then `damage` run on the log's rows. */
  async function damagedLog(log: string, damage: string): Promise<void> {
    const store = await bareStore(url, log);
    try {
      const set = (value: number) => ({ type: 'Set', data: { key: 'k', value } });
      await store.append({ seq: 1, time: 0, events: [set(1)] });
      await store.append({ seq: 2, time: 0, events: [set(2), set(3), set(4)] });
      await store.append({ seq: 5, time: 0, events: [set(5)] });
    } finally {
      await store.close();
    }
    await admin(url, `UPDATE ${t.events} SET ${damage} AND log = $1`, [log]);
  }

  /** The replay's error and the consumers' read's, on the damaged log. */
  async function errorsOf(log: string): Promise<unknown[]> {
    const store = await bareStore(url, log);
    try {
      const replayed = await store.replay(recordingSink([])).then(
        () => null,
        (err: unknown) => err,
      );
      const read = await store.read(0, 100).then(
        () => null,
        (err: unknown) => err,
      );
      return [replayed, read];
    } finally {
      await store.close();
    }
  }

  it('a new command inside another one is refused, not read as one of its events', async () => {
    // given: the second row of the three-event command claims to start a command of one
    await damagedLog('inside', 'n = 1 WHERE seq = 3');
    // when / then
    for (const err of await errorsOf('inside')) {
      expect(err).toBeInstanceOf(CorruptLogError);
      expect((err as Error).message).toMatch(
        /event 2 of 3 of the command at seq 2 \(found a new command at seq 3\)/,
      );
    }
  });

  it('a command that starts with a continuation row is refused', async () => {
    await damagedLog('headless', 'n = 0 WHERE seq = 2');
    for (const err of await errorsOf('headless')) {
      expect(err).toBeInstanceOf(CorruptLogError);
      expect((err as Error).message).toMatch(
        /the first event of a command at seq 2 \(found a continuation row\)/,
      );
    }
  });
});
