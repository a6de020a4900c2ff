import type { FsyncPolicy } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { runStoreConformance } from 'appendonly/testing';
import { tempDir } from './helpers';

for (const appendfsync of ['always', 'everysec', 'no'] as FsyncPolicy[]) {
  runStoreConformance(`AofStore ${appendfsync}`, () => {
    const { dir, cleanup } = tempDir();
    return { open: (o) => new AofStore({ dir, appendfsync, ...o }), cleanup };
  });
}
