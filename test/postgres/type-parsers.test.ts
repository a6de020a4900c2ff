import pg from 'pg';
import { Increment, Push, Transfer } from './domain';
import { useApps } from './helpers';
import { usePostgres } from '../support/postgres';

/** pg's process-wide parsers of int8 and int4, as an application may set them for its own queries. */
const OIDS = [20, 23];

/**
 * An application sets pg's type parsers for the whole process (`pg.types.setTypeParser`, int8
 * as BigInt is the usual one): the store's reads must still read its log, whatever they are.
 */
describe('PostgresStore: type parsers the application sets', () => {
  const server = usePostgres();
  const open = useApps();
  let url = '';
  const saved = OIDS.map((oid) => pg.types.getTypeParser(oid, 'text'));
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  afterEach(() => {
    for (const [i, oid] of OIDS.entries()) pg.types.setTypeParser(oid, saved[i]);
  });

  it('replays, follows, loads a snapshot and reads for consumers as with pg’s defaults', async () => {
    // given: a log of commands of one and of several events, compacted half way
    const { app: writer } = await open(url, 'parsers');
    for (let i = 0; i < 5; i++) await writer.execute(new Push('list', i));
    await writer.compact();
    for (let i = 0; i < 5; i++) await writer.execute(new Increment('n'));
    await writer.execute(new Transfer('n', 'm', 2));
    // when: the application has every integer column come back as a BigInt
    pg.types.setTypeParser(20, (text: string) => BigInt(text));
    pg.types.setTypeParser(23, (text: string) => BigInt(text));
    const { app: reader, store } = await open(url, 'parsers');
    await writer.execute(new Push('list', 5));
    await reader.sync();
    // then: the new instance loads the snapshot, replays the events after it and follows the
    // writer's next command, to the writer's state
    expect(reader.state.get('list')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(reader.state.get('n')).toBe(3);
    expect(reader.state.get('m')).toBe(2);
    expect(reader.stats().durableSeq).toBe(writer.stats().durableSeq);
    // and a consumer's read finds the two-event command whole, with its ids
    const read = await store.read(5, 100);
    const transfer = read.find((g) => g.events.length === 2);
    expect(transfer?.events.map((e) => e.data)).toEqual([
      { key: 'n', value: 3 },
      { key: 'm', value: 2 },
    ]);
    expect(transfer?.ids).toHaveLength(2);
  });
});
