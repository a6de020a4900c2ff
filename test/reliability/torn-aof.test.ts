import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createApp, silentLogger, TruncatedLogError } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';
import { type Cmd, eventCount, modelOf, recordingLogger, stateOf, tempDir, toCommand } from './support';

/*
 * Torn writes, exhaustively: a log of single-record groups (SET, DEL, a user event) and MULTI
 * groups, with and without `#TS` lines, cut at EVERY byte offset inside its last three groups.
 * The rule (Redis's aof-load-truncated, plus our CRC line): a group stands once its `#CRC` line
 * is whole; an unfinished group, a dangling `#TS` line, or whole records whose `#CRC` line is torn
 * or missing (unverified) are cut whole, with a warning naming file and offset, and the log keeps
 * working after the cut. With
 * `loadTruncated: false` the same cuts refuse to load with TruncatedLogError naming file and offset.
 * test/aof/replay.test.ts cuts one MULTI every 7 bytes; this covers every byte and every shape.
 */

const INCR = 'appendonly.aof.1.incr.aof';

const history: Cmd[] = [
  { kind: 'put', key: 'a', value: 'x\r\ny' },
  {
    kind: 'putMany',
    entries: [
      ['b', 1],
      ['c', { deep: [1, 2] }],
    ],
  },
  { kind: 'count', key: 'n', by: 2 },
  // The last three groups, cut at every byte: a DEL, a MULTI of three SETs, a user event.
  { kind: 'remove', keys: ['a', 'b'] },
  {
    kind: 'putMany',
    entries: [
      ['d', 'ü'],
      ['e', null],
      ['c', 7],
    ],
  },
  { kind: 'count', key: 'n', by: -5 },
];

interface Group {
  readonly start: number;
  /** Where its `#CRC` line starts (the group stands once the line is whole, at `end`). */
  readonly recordEnd: number;
  readonly end: number;
}

/** An app of the fixtures on `store`; `clock` gives every group a new #TS second. */
function appOn(store: AofStore, clock?: { now: () => number }) {
  return createApp({ ...fixtures.conformanceClasses, store, logger: silentLogger, clock });
}

/** The log of `history` (the store's, then without its #CRC lines) and each group's byte range in it. */
async function writtenWithoutCrc(
  dir: string,
  aofTimestamps: boolean,
): Promise<{ bytes: Buffer; starts: number[] }> {
  const incr = path.join(dir, 'appendonlydir', INCR);
  let now = 1_700_000_000_000;
  const app = await appOn(new AofStore({ dir, appendfsync: 'always', aofTimestamps }), {
    now: () => (now += 1500),
  });
  const starts: number[] = [];
  let removed = 0;
  for (const cmd of history) {
    starts.push((fs.existsSync(incr) ? fs.statSync(incr).size : 0) - removed);
    await app.execute(toCommand(cmd));
    removed += 15; // one #CRC line per group
  }
  await app.close();
  const bytes = Buffer.from(fs.readFileSync(incr, 'latin1').replace(/#CRC:[0-9a-f]{8}\r\n/g, ''), 'latin1');
  expect(bytes.length).toBe(fs.statSync(incr).size - removed);
  return { bytes, starts: [...starts, bytes.length] };
}

describe.each([
  ['without #TS', false],
  ['with #TS', true],
])('torn AOF without any #CRC line (%s): a file written by hand', (_name, aofTimestamps) => {
  it('keeps every whole command, cut anywhere in the last three groups; cuts only an unfinished one', async () => {
    const { dir, cleanup } = tempDir('torn-aof-nocrc');
    try {
      const incr = path.join(dir, 'appendonlydir', INCR);
      const { bytes, starts } = await writtenWithoutCrc(dir, aofTimestamps);
      for (let cut = starts[3]; cut <= bytes.length; cut++) {
        // Group i is bytes[starts[i]..starts[i + 1]): whole once its records are, since no #CRC follows.
        const standing = starts.slice(1).filter((end) => end <= cut).length;
        const torn = starts.findIndex((s, i) => i + 1 < starts.length && s < cut && cut < starts[i + 1]);
        const cutAt = torn < 0 ? cut : starts[torn];
        fs.writeFileSync(incr, bytes.subarray(0, cut));
        const app = await appOn(new AofStore({ dir }));
        const what = `cut at ${cut}`;
        expect([what, stateOf(app)]).toEqual([what, modelOf(history.slice(0, standing))]);
        expect([what, fs.statSync(incr).size]).toEqual([what, cutAt]);
        await app.close();
      }
    } finally {
      cleanup();
    }
  });
});

describe.each([
  ['without #TS', false],
  ['with #TS (aofTimestamps)', true],
])('torn AOF (%s): every cut inside the last three groups', (_name, aofTimestamps) => {
  it('reopens to exactly the complete prefix, warns with file and offset, keeps working; refuses with loadTruncated: false', async () => {
    const { dir, cleanup } = tempDir('torn-aof');
    try {
      const incr = path.join(dir, 'appendonlydir', INCR);
      let now = 1_700_000_000_000;
      const clock = { now: () => (now += 1500) }; // a new #TS second for every group
      const app = await appOn(new AofStore({ dir, appendfsync: 'always', aofTimestamps }), clock);
      const groups: Group[] = [];
      for (const cmd of history) {
        const start = fs.existsSync(incr) ? fs.statSync(incr).size : 0;
        await app.execute(toCommand(cmd));
        const end = fs.statSync(incr).size;
        const text = fs.readFileSync(incr, 'latin1');
        groups.push({ start, recordEnd: text.lastIndexOf('#CRC:', end), end });
      }
      await app.close();
      const full = fs.readFileSync(incr);
      // The shapes are the ones this test claims to cover.
      const body = (g: Group) => full.toString('latin1', g.start, g.end);
      expect(groups.every((g) => body(g).startsWith('#TS:') === aofTimestamps)).toBe(true);
      expect(body(groups[4])).toContain('MULTI');
      expect(body(groups[3])).not.toContain('MULTI');
      expect(groups.every((g) => g.recordEnd > g.start && g.end === g.recordEnd + 15)).toBe(true);

      const seqAfter = (k: number) => history.slice(0, k).reduce((n, c) => n + eventCount(c), 0);
      let checked = 0;
      for (let cut = groups[3].start; cut <= full.length; cut++) {
        // What the rule says: how many groups stand, and where (if anywhere) the file is cut.
        const standing = groups.filter((g) => g.end <= cut).length;
        const torn = groups.find((g) => g.start < cut && cut < g.end);
        const cutAt = torn === undefined ? cut : torn.start;
        const expected = modelOf(history.slice(0, standing));
        const what = `cut at ${cut}`;

        fs.writeFileSync(incr, full.subarray(0, cut));
        const strict = await createApp({
          ...fixtures.conformanceClasses,
          store: new AofStore({ dir, loadTruncated: false }),
          logger: silentLogger,
        }).catch((e: unknown) => e);
        if (torn !== undefined) {
          expect([what, strict]).toEqual([what, expect.any(TruncatedLogError)]);
          expect([what, (strict as TruncatedLogError).file, (strict as TruncatedLogError).offset]).toEqual([
            what,
            INCR,
            cutAt,
          ]);
          expect((strict as Error).message).toContain(
            `${INCR}: the log ends in an incomplete record at byte offset ${cutAt}`,
          );
          expect(fs.statSync(incr).size).toBe(cut); // refusing changes nothing
        } else {
          expect([what, stateOf(strict as typeof app)]).toEqual([what, expected]);
          await (strict as typeof app).close();
        }

        const logger = recordingLogger();
        const repaired = await createApp({
          ...fixtures.conformanceClasses,
          store: new AofStore({ dir, appendfsync: 'no', aofTimestamps }),
          logger,
        });
        expect([what, stateOf(repaired)]).toEqual([what, expected]);
        expect([what, repaired.stats().lastSeq]).toEqual([what, seqAfter(standing)]);
        const warnings = logger.lines.filter((l) => l.startsWith('warn:'));
        if (torn !== undefined) {
          expect([what, warnings]).toEqual([
            what,
            [
              expect.stringContaining(
                `${INCR}: the log ends in an incomplete record (short read); cutting it at byte offset ${cutAt} (${cut - cutAt} bytes removed)`,
              ),
            ],
          ]);
        } else {
          expect([what, warnings]).toEqual([what, []]);
        }
        expect([what, fs.statSync(incr).size]).toEqual([what, cutAt]);
        // The log works after the cut: a new command lands after the complete prefix and reloads.
        const next = await repaired.execute(toCommand({ kind: 'put', key: 'after', value: cut }));
        expect(next.firstSeq).toBe(seqAfter(standing) + 1);
        await repaired.close();
        const again = await createApp({
          ...fixtures.conformanceClasses,
          store: new AofStore({ dir }),
          logger: silentLogger,
        });
        expect([what, stateOf(again)]).toEqual([what, { ...expected, after: cut }]);
        await again.close();
        checked++;
      }
      expect(checked).toBe(full.length - groups[3].start + 1);
    } finally {
      cleanup();
    }
  });
});
