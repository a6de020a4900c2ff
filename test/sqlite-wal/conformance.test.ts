import * as path from 'node:path';
import type { FsyncPolicy } from 'appendonly';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { runStoreConformance } from 'appendonly/testing';
import { tempDir } from './helpers';

for (const appendfsync of ['always', 'everysec', 'no'] as FsyncPolicy[]) {
  runStoreConformance(`SqliteWalStore ${appendfsync}`, () => {
    const { dir, cleanup } = tempDir();
    const file = path.join(dir, 'app.db');
    return { open: (o) => new SqliteWalStore({ file, appendfsync, ...o }), cleanup };
  });
}
