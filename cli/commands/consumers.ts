import { canConsume } from '../../src/consumers/consumer-hub';
import type { ConsumerRecord, ParkedEvent } from '../../src/index';
import { planRetention } from '../../src/kit/index';
import { toReplayGroup } from '../../src/store/replay-batch';
import { EXIT_OK, invalid, parseCount, usage } from '../errors';
import { openLog } from '../log-format';
import { confirmChange, say } from '../output';
import { withStoreLocked } from '../stores';

/** Options of `appendonly consumers`. */
export interface ConsumersOptions {
  readonly json?: boolean;
  /** retry / drop: every parked event of the consumer. */
  readonly all?: boolean;
  /** Do not ask for confirmation. */
  readonly yes?: boolean;
}

/**
 * `appendonly consumers PATH [--json]`: the durable consumers, their positions, lag, parked
 * events and stale marks, and what holds compaction back (the consumer whose position keeps
 * events below the snapshot, as the next compaction will find it). `appendonly consumers PATH retry|drop NAME [SEQ...] [--all] [--yes]`: marks parked
 * events to be handed to the handler again when the consumer next starts, or drops them. The
 * changes go through the store (under its lock: stop the app that holds it first).
 */
export async function consumers(
  pathArg: string,
  action: string | undefined,
  name: string | undefined,
  seqArgs: readonly string[],
  options: ConsumersOptions,
): Promise<number> {
  if (action === undefined || action === 'list') return list(pathArg, options);
  if (action !== 'retry' && action !== 'drop')
    throw usage(`consumers: unknown action ${JSON.stringify(action)}: use list, retry or drop`);
  if (name === undefined) throw usage(`consumers ${action}: name the consumer`);
  if ((seqArgs.length === 0) === (options.all !== true))
    throw usage(`consumers ${action}: give the parked events' seqs, or --all`);
  const seqs = new Set(seqArgs.map((s) => parseCount(s, 'SEQ')));
  const log = openLog(pathArg);
  return withStoreLocked(log.store(), `${action} parked events`, async (store) => {
    if (!canConsume(store)) throw invalid(`the ${store.kind} store keeps no consumers`);
    const record = (await store.loadConsumers()).find((r) => r.name === name);
    if (record === undefined) throw invalid(`no consumer ${JSON.stringify(name)} in ${log.location}`);
    const chosen = record.parked.filter((p) => options.all === true || seqs.has(p.seq));
    const missing = [...seqs].filter((s) => !record.parked.some((p) => p.seq === s));
    if (missing.length > 0)
      throw invalid(`consumer ${JSON.stringify(name)} has no parked event at seq ${missing.join(', ')}`);
    if (chosen.length === 0) {
      say(`consumer ${JSON.stringify(name)} has no parked events`);
      return EXIT_OK;
    }
    const what = `${chosen.length} parked event(s) of consumer ${JSON.stringify(name)} (seq ${chosen.map((p) => p.seq).join(', ')})`;
    const question =
      action === 'retry'
        ? `hand ${what} to its handler again when it next starts?`
        : `drop ${what} for good?`;
    if (!(await confirmChange(options.yes, `consumers ${action}`, action, question))) return EXIT_OK;
    const parked: ParkedEvent[] =
      action === 'retry'
        ? record.parked.map((p) => (chosen.includes(p) ? { ...p, retry: true } : p))
        : record.parked.filter((p) => !chosen.includes(p));
    await store.saveConsumer({ ...record, parked });
    say(
      action === 'retry'
        ? `${what}: marked for retry; the consumer hands them to its handler when it next starts`
        : `${what}: dropped`,
    );
    return EXIT_OK;
  });
}

async function list(pathArg: string, options: ConsumersOptions): Promise<number> {
  const log = openLog(pathArg);
  let lastSeq = 0;
  let snapshotSeq = 0;
  for await (const batch of log.records('reading the log')) {
    for (const r of batch) {
      if (r.kind === 'snapshot') {
        lastSeq = r.seq;
        snapshotSeq = r.seq;
      } else if (r.kind !== 'entry') {
        const g = toReplayGroup(r);
        lastSeq = g.seq + g.events.length - 1;
      }
    }
  }
  const records: readonly ConsumerRecord[] = [...(await log.consumerRecords())].sort((a, b) =>
    a.name.localeCompare(b.name),
  );
  const rows = records.map((r) => ({
    name: r.name,
    position: r.position,
    lag: Math.max(0, lastSeq - r.position),
    parked: r.parked,
    ...(r.stale !== undefined ? { stale: r.stale } : {}),
  }));
  // What the snapshot keeps now (no new stale marks: the limit is the store's option, not known here).
  const retention = planRetention(records, snapshotSeq, Number.POSITIVE_INFINITY, 0).stats;
  if (options.json) {
    say(JSON.stringify({ location: log.location, lastSeq, consumers: rows, retention }));
    return EXIT_OK;
  }
  say(`consumers of ${log.location} (last seq ${lastSeq}):`);
  if (rows.length === 0) say('  none');
  for (const r of rows) {
    const stale =
      r.stale !== undefined
        ? `  STALE (a compaction at seq ${r.stale.seq} found it ${r.stale.lag} events behind; app.resetConsumer runs it again)`
        : '';
    say(`  ${r.name}  position ${r.position}  lag ${r.lag}  parked ${r.parked.length}${stale}`);
    for (const p of r.parked) {
      const when = new Date(p.parkedAt).toISOString();
      say(
        `    parked seq ${p.seq} ${p.type}, ${p.attempts} attempts, ${when}: ${p.error}${p.retry === true ? ' (retry asked)' : ''}`,
      );
    }
  }
  const held = retention.heldBy;
  say(
    held === undefined
      ? `compaction: no consumer holds events below the snapshot (seq ${snapshotSeq})`
      : `compaction: held by ${JSON.stringify(held.name)} at seq ${held.position}: ${retention.keptEvents} events below the snapshot (seq ${snapshotSeq}) kept from seq ${retention.keptFrom}`,
  );
  return EXIT_OK;
}
