import { createApp, StoreLockedError } from '../../src/index';
import { loadAppModule, unknownTypes } from '../app-module';
import { EXIT_INVALID, EXIT_OK, invalid } from '../errors';
import { openLog } from '../log-format';
import { confirmChange, progress, say } from '../output';
import { lockRefused, toolContext } from '../stores';

/**
 * `appendonly rewrite PATH [--app module] [--yes]`: offline compaction, by the very code an app runs:
 * createApp on the real store (which takes its lock), then app.compact(). The state of user
 * events comes from the user's projections, so a log holding types that neither the built-in
 * KV events nor `--app`'s projections handle is refused, naming them: compacting it without
 * them would silently drop their effect.
 */
export async function rewrite(pathArg: string, options: { app?: string; yes?: boolean }): Promise<number> {
  const log = openLog(pathArg);
  const classes = loadAppModule(options.app);
  await log.assertLoads('rewrite the log');
  const types = new Set<string>();
  let snapshotVersion: string | undefined;
  for await (const batch of log.records('scanning')) {
    for (const r of batch) {
      if (r.kind === 'group') for (const e of r.events) types.add(e.type);
      else if (r.kind === 'snapshot') snapshotVersion = r.projectionsVersion;
    }
  }
  const unknown = unknownTypes(types, classes);
  if (unknown.length > 0) {
    throw invalid(
      `the log holds event types whose effect on the state depends on your projections: ${unknown.join(', ')}; ` +
        'pass --app <module exporting { handlers, projections }> (the ones given to createApp)',
    );
  }
  const question = `This will compact ${pathArg}: its log is replaced by a snapshot of its state (a backup is kept). Continue?`;
  if (!(await confirmChange(options.yes, 'rewrite', 'rewrite', question))) return EXIT_INVALID;
  const store = log.store();
  const context = toolContext();
  let app: Awaited<ReturnType<typeof createApp>>;
  // The app's replay reports its progress through the store; poll it for the bar.
  const bar = progress('loading', log.replaySize());
  const timer = setInterval(() => bar.update(store.replayProgress?.().done ?? 0), 200);
  try {
    // The new snapshot records `--app`'s projections version; without one, the old snapshot's
    // (the projections given are taken to be those that built it, as an app without a version
    // loads it). With another version than the snapshot's, createApp rebuilds from the events
    // or refuses, as an app would.
    app = await createApp({
      ...classes,
      projectionsVersion: classes.projectionsVersion ?? snapshotVersion,
      store,
      logger: context.logger,
    });
  } catch (err) {
    if (err instanceof StoreLockedError) throw lockRefused('rewrite the log', err);
    throw err;
  } finally {
    clearInterval(timer);
    bar.stop();
  }
  try {
    // The store is open (its lock held) and the log loaded unchanged: back it up, then compact.
    await log.backup(store, 'rewrite');
    const r = await app.compact();
    say(
      `rewrote the log: ${r.keys} keys up to seq ${r.seq}; ${r.sizeBefore} bytes before, ${r.sizeAfter} after (${r.durationMs} ms)`,
    );
  } finally {
    await app.close();
  }
  return EXIT_OK;
}
