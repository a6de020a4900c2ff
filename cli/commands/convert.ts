import type { JsonValue } from '../../src/index';
import { toReplayGroup } from '../../src/store/replay-batch';
import { canConsume } from '../../src/consumers/consumer-hub';
import { carryPositions, copyPositions } from '../consumer-positions';
import { EXIT_INVALID, EXIT_OK, invalid } from '../errors';
import { createLog, displayPath, newLogKind, openLog } from '../log-format';
import { confirmChange, say } from '../output';
import { withStoreLocked } from '../stores';

/**
 * `appendonly convert FROM TO [--yes]`: the same log in another store: the snapshot (with its
 * projections version, so that an app loads it in the target exactly when it would in the source) and every command
 * with its sequence numbers and time, so that a replay of the target gives the state a replay
 * of the source gives, and `cat` speaks of the same numbers. TO is a `.db` file (SQLite-WAL) or
 * a folder (AOF); it must not exist or be empty: the tool never writes over a log. Each target
 * is written with its store's own encoding (see createLog). The durable consumers' records
 * (positions, parked events) go into the target store's consumer storage unchanged, the seqs
 * they count being the same, but for what the copy does not hold (see copyPositions: a consumer
 * behind the snapshot is marked stale, a position past the copy's end clamped).
 */
export async function convert(
  fromArg: string,
  toArg: string,
  options: { yes?: boolean } = {},
): Promise<number> {
  const from = openLog(fromArg);
  // A connection string is shown without its password.
  const [fromName, toName] = [displayPath(fromArg), displayPath(toArg)];
  const question = `This will write ${toName} (${newLogKind(toArg)}), a copy of the log in ${fromName}. Continue?`;
  if (!(await confirmChange(options.yes, 'convert', 'convert', question))) return EXIT_INVALID;
  const to = await createLog(toArg);
  const sink = to.writer;
  // The snapshot is kept in memory until the first command (an app holds the same state in memory).
  let snapshot: { seq: number; entries: Map<string, JsonValue>; version?: string } | null = null;
  let commands = 0;
  let lastSeq = 0;
  let snapshotSeq = 0;
  try {
    for await (const batch of from.records('converting')) {
      for (const r of batch) {
        if (r.kind === 'snapshot') {
          snapshot = { seq: r.seq, entries: new Map(), version: r.projectionsVersion };
          lastSeq = r.seq;
          snapshotSeq = r.seq;
        } else if (r.kind === 'entry') snapshot!.entries.set(r.key, r.value);
        else {
          if (snapshot !== null) {
            await sink.snapshot(snapshot.seq, snapshot.entries, snapshot.version);
            snapshot = null;
          }
          const g = toReplayGroup(r);
          await sink.group(g);
          commands++;
          lastSeq = g.seq + g.events.length - 1;
        }
      }
    }
    if (snapshot !== null) await sink.snapshot(snapshot.seq, snapshot.entries, snapshot.version);
    await sink.close();
  } catch (err) {
    await sink.abort();
    throw err;
  }
  // The consumers' records after the log: a consumer's position is only meaningful once the
  // events it counts are there. Read once the source's replay let go of its lock (a PostgreSQL
  // source may have gone on meanwhile: copyPositions clamps to what was copied).
  const consumers = await from.consumerRecords();
  if (consumers.length > 0) {
    await withStoreLocked(openLog(toArg).store(), 'carry the consumers', async (store) => {
      if (!canConsume(store)) throw invalid(`the ${store.kind} store keeps no consumers`);
      const copied = { snapshotSeq, lastSeq, now: Date.now() };
      await carryPositions(
        { load: () => consumers, save: (r) => store.saveConsumer(r) },
        (records) => copyPositions(records, copied),
        say,
      );
    });
  }
  say(
    `converted ${fromName} (${from.kind}) to ${toName} (${to.kind}): ${commands} commands, up to seq ${lastSeq}`,
  );
  return EXIT_OK;
}
