import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { EventStore } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { type CrashTarget, crashLoop } from '../support/crash';

/**
 * The crash loop of issue 8: a child runs 64 commands in flight (each a two-event group) under
 * `always`, with compactions started every few hundred commands and automatic rewrites on a
 * small trigger, and is killed with SIGKILL at random moments, compactions included. After
 * each kill the store reopens to the model's state after a prefix that covers every
 * acknowledgement. CI runs 50 kills per store; APPENDONLY_SOAK=1 runs 1,000.
 */
const kills = Number(process.env.APPENDONLY_KILLS ?? (process.env.APPENDONLY_SOAK ? 1000 : 50));

const stores: [string, (dir: string) => { target: CrashTarget; open: () => EventStore }][] = [
  [
    'AofStore',
    (dir) => {
      const options = { dir, appendfsync: 'always', autoRewriteMinSize: 256 * 1024 } as const;
      return {
        target: { module: 'adapters/aof/index.ts', exportName: 'AofStore', options },
        open: () => new AofStore({ dir, appendfsync: 'always' }),
      };
    },
  ],
  [
    'SqliteWalStore',
    (dir) => {
      const options = {
        file: path.join(dir, 'crash.db'),
        appendfsync: 'always',
        autoRewriteMinSize: 256 * 1024,
      } as const;
      return {
        target: { module: 'adapters/sqlite-wal/index.ts', exportName: 'SqliteWalStore', options },
        open: () => new SqliteWalStore({ file: options.file, appendfsync: 'always' }),
      };
    },
  ],
];

describe.each(stores)('crash loop: %s killed with SIGKILL, compactions included', (name, make) => {
  it(
    `loses nothing acknowledged and half-applies nothing, over ${kills} kills`,
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-crashloop-'));
      try {
        const { target, open } = make(dir);
        const rounds = await crashLoop(target, open, { rounds: kills, maxRunMs: 250, compactEvery: 300 });
        const acked = rounds.reduce((n, r) => n + r.acked, 0);
        const recovered = rounds[rounds.length - 1]?.recovered ?? 0;
        const inCompaction = rounds.filter((r) => r.duringCompaction).length;
        process.stdout.write(
          `${name}: ${rounds.length} kills (${inCompaction} during a compaction), ${acked} acknowledged commands, ${recovered} in the log at the end\n`,
        );
        expect(rounds).toHaveLength(kills);
        expect(acked).toBeGreaterThan(kills);
        expect(inCompaction).toBeGreaterThan(0);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    30 * 60 * 1000,
  );
});
