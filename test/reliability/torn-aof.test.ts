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
 * The rule (Redis's aof-load-truncated, plus our CRC line): a group stands once its command (or
 * EXEC) is complete; an unfinished group, a dangling `#TS` line or a torn `#CRC` line is cut
 * with a warning naming file and offset, and the log keeps working after the cut. With
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
  /** Where its `#CRC` line starts: the group stands from here on. */
  readonly recordEnd: number;
  readonly end: number;
}

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
      const app = await createApp({
        ...fixtures.conformanceClasses,
        store: new AofStore({ dir, appendfsync: 'always', aofTimestamps }),
        logger: silentLogger,
        clock,
      });
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
        const standing = groups.filter((g) => g.recordEnd <= cut).length;
        const torn = groups.find((g) => g.start < cut && cut < g.end && cut !== g.recordEnd);
        const cutAt = torn === undefined ? cut : cut > torn.recordEnd ? torn.recordEnd : torn.start;
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
