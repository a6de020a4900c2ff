import 'reflect-metadata';
import { type App, createApp, type FsyncPolicy, type JsonValue, type Logger, silentLogger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { classes } from './domain';

/** An app on a PostgreSQL log, and its store. */
export interface Opened {
  readonly app: App;
  readonly store: PostgresStore;
}

/** Opens apps on PostgreSQL logs (the test domain's classes) and closes them after each test. */
export function useApps(): (
  url: string,
  log: string,
  policy?: FsyncPolicy,
  logger?: Logger,
) => Promise<Opened> {
  const apps: App[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close().catch(() => {});
  });
  return async (url, log, policy = 'always', logger = silentLogger) => {
    const store = new PostgresStore({ connectionString: url, log, appendfsync: policy });
    const app = await createApp({ ...classes, store, logger });
    apps.push(app);
    return { app, store };
  };
}

/**
 * A store opened on its own, with no app on it (an app would follow it): for tests of what the
 * store itself reports. The caller closes it.
 */
export async function bareStore(url: string, log: string): Promise<PostgresStore> {
  const store = new PostgresStore({ connectionString: url, log });
  await store.open({
    logger: silentLogger,
    clock: { now: Date.now },
    snapshots: {
      takeSnapshot: () => {
        throw new Error('no compaction in this test');
      },
    },
  });
  return store;
}

/** The state as a plain object. */
export function stateOf(app: App): Record<string, JsonValue> {
  return Object.fromEntries(app.state.entries());
}

/** Waits until `condition` holds, polling every 20 ms, up to `ms`. */
export async function eventually(condition: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('the condition never held');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
