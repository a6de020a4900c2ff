import type { EventGroup, JsonValue } from 'appendonly';
import { recordingSink, type ReplayedRecord } from '../../src/store/replay-sink';
import { usePostgres } from '../support/postgres';
import { bareStore } from './helpers';

/** Strings that an SQL literal, a pg array literal or a line-split encoding written wrongly would change. */
const TRICKY = [
  '',
  'NULL',
  'null',
  `it's "quoted" \\ back\\\\slash \\" {a,b} $1`,
  'line\nbreak\r\nand\ttab \u0000 \u001e \u2028 \u2029',
  'ünïcödé 🐘 \ud83d',
  '{"json":"inside a string"}',
];

/**
 * One batch of several rows (the `many` statement: its columns sent as array literals and as
 * JSON lines split by the server) holds exactly what was appended: event data, types, ids, and
 * metadata on some groups only (null rows between present ones).
 */
describe('PostgresStore: a batch of many rows', () => {
  const server = usePostgres();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it('logs every column of every row exactly', async () => {
    // given: groups of one and of several events, with and without metadata, data and types
    // holding quotes, backslashes, commas, braces, newlines, NULL spelled out, empty strings
    const store = await bareStore(url, 'batch-columns');
    const time = 1_700_000_000_000;
    const groups: EventGroup[] = [];
    let seq = 1;
    const id = (n: number) => `0190a000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;
    for (let g = 0; g < TRICKY.length; g++) {
      const size = 1 + (g % 3);
      const events = Array.from({ length: size }, (_, i) => ({
        type: i === 0 ? `T "${g}", \\ {x}` : 'Plain',
        data: { s: TRICKY[(g + i) % TRICKY.length], n: g, list: [TRICKY[g], null, 1.5] } as JsonValue,
      }));
      const group: EventGroup =
        g % 2 === 0
          ? { seq, time: time + g, events, ids: events.map((_, i) => id(seq + i)) }
          : {
              seq,
              time: time + g,
              events,
              ids: events.map((_, i) => id(seq + i)),
              metadata: { why: TRICKY[g] },
            };
      groups.push(group);
      seq += size;
    }
    // when: appended in one turn (one batch, one statement)
    await Promise.all(groups.map((g) => store.append(g)));
    const batches = store.stats().batches;
    // then: one batch, and a replay reads back every group as it was
    const out: ReplayedRecord[] = [];
    await store.replay(recordingSink(out));
    await store.close();
    expect(batches).toBe(1);
    expect(out).toEqual(
      groups.map((g) => ({
        kind: 'group',
        seq: g.seq,
        time: g.time,
        events: g.events.map((e) => ({ type: e.type, data: JSON.parse(JSON.stringify(e.data)) })),
        ids: g.ids,
        ...(g.metadata === undefined ? {} : { metadata: g.metadata }),
      })),
    );
  });

  it('logs a batch without any metadata, and one with metadata on every row', async () => {
    const store = await bareStore(url, 'batch-metadata');
    const groups = (from: number, metadata: boolean): EventGroup[] =>
      Array.from({ length: 5 }, (_, i) => ({
        seq: from + i,
        time: 1,
        events: [{ type: 'E', data: TRICKY[i] }],
        ...(metadata ? { metadata: { i: TRICKY[i] } } : {}),
      }));
    const all = [...groups(1, false), ...groups(6, true)];
    await Promise.all(groups(1, false).map((g) => store.append(g)));
    await Promise.all(groups(6, true).map((g) => store.append(g)));
    const batches = store.stats().batches;
    const out: ReplayedRecord[] = [];
    await store.replay(recordingSink(out));
    await store.close();
    expect(batches).toBe(2);
    expect(out.map((r) => (r.kind === 'group' ? [r.seq, r.events[0].data, r.metadata] : r))).toEqual(
      all.map((g) => [g.seq, g.events[0].data, g.metadata]),
    );
  });
});
