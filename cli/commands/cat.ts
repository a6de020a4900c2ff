import { toReplayGroup } from '../../src/store/replay-batch';
import { EXIT_OK } from '../errors';
import { openLog } from '../log-format';

/**
 * `appendonly cat PATH [--json]`: the records in log order. A snapshot (AOF base, SQLite
 * snapshot table) comes first, one line per key; then one line per event with its global
 * sequence number and its command's time (`-` when the log has none: an AOF without #TS).
 */
export async function cat(pathArg: string, options: { json?: boolean }): Promise<number> {
  const log = openLog(pathArg);
  const json = options.json === true;
  let snapshotSeq = 0;
  for await (const batch of log.records('cat')) {
    const lines: string[] = [];
    for (const r of batch) {
      if (r.kind === 'snapshot') {
        snapshotSeq = r.seq;
        const version = r.projectionsVersion;
        lines.push(
          json
            ? JSON.stringify(
                version === undefined
                  ? { kind: 'snapshot', seq: r.seq }
                  : { kind: 'snapshot', seq: r.seq, projectionsVersion: version },
              )
            : `snapshot up to seq ${r.seq}${version === undefined ? '' : ` (projections version ${version})`}`,
        );
      } else if (r.kind === 'entry') {
        lines.push(
          json
            ? JSON.stringify({ kind: 'entry', snapshotSeq, key: r.key, value: r.value })
            : `  SET ${JSON.stringify(r.key)} ${JSON.stringify(r.value)}`,
        );
      } else {
        const g = toReplayGroup(r);
        const time = g.time > 0 ? new Date(g.time).toISOString() : null;
        for (let i = 0; i < g.events.length; i++) {
          const e = g.events[i];
          const seq = g.seq + i;
          lines.push(
            json
              ? JSON.stringify({ kind: 'event', seq, time, group: g.seq, type: e.type, data: e.data })
              : `${seq} ${time ?? '-'} ${e.type} ${JSON.stringify(e.data)}${g.events.length > 1 ? ` (command ${g.seq}, ${i + 1}/${g.events.length})` : ''}`,
          );
        }
      }
    }
    if (lines.length > 0 && !process.stdout.write(`${lines.join('\n')}\n`)) {
      await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  }
  return EXIT_OK;
}
