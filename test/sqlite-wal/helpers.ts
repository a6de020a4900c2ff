import * as path from 'node:path';
import { type App, createApp, type Logger, silentLogger } from 'appendonly';
import { type SqliteWalStoreOptions, SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';

import { tempDir as tempDirUnder } from '../support/helpers';

export { recordingLogger, state } from '../support/helpers';

/** A fresh folder under the OS temp dir; `cleanup()` removes it. */
export function tempDir(): { dir: string; cleanup: () => void } {
  return tempDirUnder('sqlite');
}

/** An app of the conformance fixtures (Put, PutMany, Remove, Count, …) on a SqliteWalStore. */
export async function openApp(
  options: SqliteWalStoreOptions,
  logger: Logger = silentLogger,
): Promise<{ app: App; store: SqliteWalStore }> {
  const store = new SqliteWalStore(options);
  const app = await createApp({ ...fixtures.conformanceClasses, store, logger });
  return { app, store };
}

/**
 * Gives each test of the enclosing `describe` a fresh database path in its own temp folder,
 * removed after the test: `let file: string; useDbFile((f) => (file = f));`.
 */
export function useDbFile(set: (file: string) => void): void {
  let cleanup = () => {};
  beforeEach(() => {
    const t = tempDir();
    cleanup = t.cleanup;
    set(path.join(t.dir, 'app.db'));
  });
  afterEach(() => cleanup());
}
