import 'reflect-metadata';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseFsyncPolicy } from 'appendonly';
import { DEFAULT_LIMITS } from './protocol';
import { KvServer } from './server';
import { dataLocation, STORE_KINDS, type StoreKind, storeFactory } from './store';

/**
 * `npm run kv-server -- --port 6380 --dir ./data --appendfsync everysec [--store aof|sqlite|memory|postgres]
 * [--database-url URL] [--log NAME] [--requirepass PASS] [--bind HOST] [--fsync event-loop|thread-pool|adaptive]`:
 * a Redis-protocol server on appendonly, for redis-cli, ioredis and redis-benchmark. With
 * `--store postgres`, several servers on one `--database-url` and `--log` share one log.
 */
async function main(): Promise<void> {
  const program = new Command('kv-server')
    .description('A RESP2 (Redis protocol) server on the appendonly framework')
    .option('--port <port>', 'TCP port', integer, 6380)
    .option('--bind <host>', 'address to listen on', '127.0.0.1')
    .option('--dir <path>', 'data folder', './data')
    .addOption(
      new Option('--appendfsync <policy>', 'when a write is durable')
        .choices(['always', 'everysec', 'no'])
        .default('everysec'),
    )
    .addOption(new Option('--store <kind>', 'the store').choices([...STORE_KINDS]).default(STORE_KINDS[0]))
    .addOption(
      new Option(
        '--fsync <where>',
        "where the AOF store's fsync of appendfsync always runs (event-loop: as Redis; adaptive: on the loop while fsyncs are fast and one command waits)",
      )
        .choices(['event-loop', 'thread-pool', 'adaptive'])
        .default('event-loop'),
    )
    .option(
      '--database-url <url>',
      'with --store postgres: postgres://user:password@host/db (default: $DATABASE_URL)',
    )
    .option('--log <name>', "with --store postgres: the log's name (servers on one log share it)", 'default')
    .option('--requirepass <password>', 'refuse every command but AUTH until the client authenticates')
    .option('--proto-max-bulk-len <bytes>', 'longest bulk argument', integer, DEFAULT_LIMITS.maxBulk)
    .option('--maxclients <n>', 'most connections at once', integer, 10_000)
    .option('--progress-interval <ms>', 'how often to print progress while loading', integer, 1000)
    .parse();
  const o = program.opts<{
    port: number;
    bind: string;
    dir: string;
    appendfsync: string;
    store: StoreKind;
    databaseUrl?: string;
    log: string;
    fsync: 'event-loop' | 'thread-pool' | 'adaptive';
    requirepass?: string;
    protoMaxBulkLen: number;
    maxclients: number;
    progressInterval: number;
  }>();
  const appendfsync = parseFsyncPolicy(o.appendfsync);
  const postgres = { connectionString: o.databaseUrl ?? process.env.DATABASE_URL ?? '', log: o.log };
  const location = dataLocation(o.store, o.dir, o.store === 'postgres' ? postgres : undefined);
  const server = new KvServer({
    port: o.port,
    host: o.bind,
    openStore: storeFactory(
      o.store,
      o.dir,
      { fsyncOnEventLoop: o.fsync === 'adaptive' ? 'adaptive' : o.fsync === 'event-loop' },
      o.store === 'postgres' ? postgres : undefined,
    ),
    appendfsync,
    storeKind: o.store,
    location,
    requirepass: o.requirepass ?? null,
    limits: { ...DEFAULT_LIMITS, maxBulk: o.protoMaxBulkLen },
    maxClients: o.maxclients,
    progressIntervalMs: Math.max(o.progressInterval, 10),
    onShutdown: () => process.exit(0),
  });
  const port = await server.listen();
  const where =
    o.store === 'memory'
      ? 'data in memory only (nothing is persisted)'
      : `data: ${location} (${o.store} store, appendfsync ${appendfsync})`;
  say(`kv-server listening on ${o.bind}:${port} (RESP2); ${where}`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: closing (flushing and fsyncing the log)`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`kv-server: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  try {
    await server.load();
  } catch (err) {
    // Never serve a half-loaded state: say why, and stop.
    process.stderr.write(`kv-server: cannot load ${location}: ${(err as Error).message}\n`);
    await server.close().catch(() => {});
    process.exit(1);
  }
  say(`Ready to accept connections on ${o.bind}:${port}`);
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`kv-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
