import { type ReplayRecord, toReplayGroup } from '../../src/store/replay-batch';
import { loadAppModule, unknownTypes } from '../app-module';
import { EXIT_OK } from '../errors';
import { say } from '../output';
import { replayApp } from '../replay-store';
import { openLog } from '../log-format';

/**
 * `appendonly info PATH [--app module] [--json]`: what the log holds, read without changing it.
 * The key count needs the state, which depends on the user's projections: it is given when the
 * log holds only built-in events, or when `--app` provides projections for every type in it.
 */
export async function info(pathArg: string, options: { app?: string; json?: boolean }): Promise<number> {
  const log = openLog(pathArg);
  const classes = loadAppModule(options.app);
  const byType = new Map<string, number>();
  let commands = 0;
  let events = 0;
  let snapshotSeq: number | null = null;
  let snapshotVersion: string | null = null;
  let snapshotKeys = 0;
  let firstSeq: number | null = null;
  let lastSeq = 0;
  let firstTime = 0;
  let lastTime = 0;
  // One pass: the app replays the log (an event no projection handles changes nothing, as in a
  // live app) while the records are counted; the key count is kept only if every type is understood.
  const observe = (batch: readonly ReplayRecord[]): void => {
    for (const r of batch) {
      if (r.kind === 'snapshot') {
        snapshotSeq = r.seq;
        snapshotVersion = r.projectionsVersion ?? null;
        lastSeq = r.seq;
      } else if (r.kind === 'entry') {
        snapshotKeys++;
      } else {
        const g = toReplayGroup(r);
        commands++;
        events += g.events.length;
        for (const e of g.events) byType.set(e.type, (byType.get(e.type) ?? 0) + 1);
        firstSeq ??= g.seq;
        lastSeq = g.seq + g.events.length - 1;
        if (r.time > 0) {
          if (firstTime === 0) firstTime = r.time;
          lastTime = r.time;
        }
      }
    }
  };
  const app = await replayApp(log, classes, observe);
  const size = app.state.size;
  await app.close();
  const unknown = unknownTypes(byType.keys(), classes);
  const keys: number | null = unknown.length === 0 ? size : null;
  const files = log.files();
  const details = log.details?.();
  const iso = (t: number) => (t > 0 ? new Date(t).toISOString() : null);
  const result = {
    kind: log.kind,
    location: log.location,
    files,
    ...(details === undefined ? {} : { store: details }),
    totalSize: files.reduce((n, f) => n + f.size, 0),
    snapshot:
      snapshotSeq === null
        ? null
        : { seq: snapshotSeq, keys: snapshotKeys, projectionsVersion: snapshotVersion },
    commands,
    events,
    eventsByType: Object.fromEntries([...byType.entries()].sort((a, b) => b[1] - a[1])),
    firstSeq,
    lastSeq,
    firstTime: iso(firstTime),
    lastTime: iso(lastTime),
    keys,
    keysUnknownBecause:
      keys === null
        ? `the log holds event types the state depends on projections for (${unknown.join(', ')}): pass --app <module exporting { handlers, projections }>`
        : undefined,
  };
  if (options.json) {
    say(JSON.stringify(result));
    return EXIT_OK;
  }
  say(`kind: ${result.kind}`);
  say(`location: ${result.location}`);
  for (const [name, value] of Object.entries(details ?? {})) say(`${name}: ${value}`);
  say('files:');
  for (const f of files) say(`  ${f.name}  ${f.kind}  ${f.size} bytes`);
  say(`total size: ${result.totalSize} bytes`);
  say(
    snapshotSeq === null
      ? 'snapshot: none'
      : `snapshot: up to seq ${snapshotSeq}, ${snapshotKeys} keys, ${snapshotVersion === null ? 'no projections version' : `projections version ${snapshotVersion}`}`,
  );
  say(
    `commands: ${commands} (${events} events${firstSeq !== null ? `, seq ${firstSeq} to ${lastSeq}` : ''})`,
  );
  say('events by type:');
  for (const [type, n] of Object.entries(result.eventsByType)) say(`  ${type}: ${n}`);
  say(`first timestamp: ${result.firstTime ?? '- (no timestamps in this log)'}`);
  say(`last timestamp: ${result.lastTime ?? '-'}`);
  say(`last seq: ${lastSeq}`);
  say(
    keys === null ? `keys after replay: unknown: ${result.keysUnknownBecause}` : `keys after replay: ${keys}`,
  );
  return EXIT_OK;
}
