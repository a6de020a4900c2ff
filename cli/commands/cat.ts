import { currentEventVersion, upcast } from '../../src/index';
import { toReplayGroup } from '../../src/store/replay-batch';
import { loadAppModule } from '../app-module';
import { EXIT_OK } from '../errors';
import { openLog } from '../log-format';

/** The options of `appendonly cat`. */
export interface CatOptions {
  readonly json?: boolean;
  /** A module of the app (as for `info --app`): loading it defines its events, whose upcasters `cat` then runs. */
  readonly app?: string;
  /** With `--app`: print each event's data as logged, at its logged version, without upcasting. */
  readonly asLogged?: boolean;
}

/**
 * `appendonly cat PATH [--json] [--app module [--as-logged]]`: the records in log order. A
 * snapshot (AOF base, SQLite snapshot table) comes first, one line per key; then one line per
 * event with its global sequence number, its command's time (`-` when the log has none: an AOF
 * without envelope nor #TS), its version, its id and its command's metadata (`-` when logged
 * without: a log older than envelopes).
 *
 * The tool knows no event definitions of its own: without `--app` every event is shown as
 * logged. With `--app`, the module's `defineEvent`s register their versions and upcasters, and
 * events of an older version are shown upcast to the current one, as replay gives them to the
 * projections (`loggedVersion` in JSON says what the log holds); an event newer than the code
 * stops the listing with EVENT_VERSION, naming type, version and position.
 */
export async function cat(pathArg: string, options: CatOptions): Promise<number> {
  if (options.app !== undefined) loadAppModule(options.app);
  const upcasting = options.app !== undefined && options.asLogged !== true;
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
        const metadata = g.metadata ?? null;
        for (let i = 0; i < g.events.length; i++) {
          const e = g.events[i];
          const seq = g.seq + i;
          const loggedVersion = g.versions?.[i] ?? 1;
          const where = `seq ${seq}${g.file === undefined ? '' : `, ${g.file}${g.offset === undefined ? '' : ` at byte offset ${g.offset}`}`}`;
          const data = upcasting ? upcast(e.type, loggedVersion, e.data, where) : e.data;
          const version = upcasting ? currentEventVersion(e.type) : loggedVersion;
          const id = g.ids?.[i] ?? null;
          if (json) {
            const line: Record<string, unknown> = {
              kind: 'event',
              seq,
              time,
              group: g.seq,
              type: e.type,
              data,
            };
            line.version = version;
            if (version !== loggedVersion) line.loggedVersion = loggedVersion;
            line.id = id;
            line.metadata = metadata;
            lines.push(JSON.stringify(line));
          } else {
            const v = version === loggedVersion ? `v${version}` : `v${version} (logged v${loggedVersion})`;
            const part = g.events.length > 1 ? ` (command ${g.seq}, ${i + 1}/${g.events.length})` : '';
            lines.push(
              `${seq} ${time ?? '-'} ${e.type} ${JSON.stringify(data)} ${v} id=${id ?? '-'} metadata=${metadata === null ? '-' : JSON.stringify(metadata)}${part}`,
            );
          }
        }
      }
    }
    if (lines.length > 0 && !process.stdout.write(`${lines.join('\n')}\n`)) {
      await new Promise((resolve) => process.stdout.once('drain', resolve));
    }
  }
  return EXIT_OK;
}
