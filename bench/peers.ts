import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { formatTable, progress, quick, type Row, runWindow } from './measure';
import type { Account } from './workload';

/**
 * The peers a user would pick instead, doing the same work as the core rows: a command that
 * sets one key (NestJS CQRS), or one event appended per command (Emmett). A peer that cannot run
 * here gets a row saying why, never a silent gap.
 */
export async function benchPeers(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const [name, run] of [
    ['@nestjs/cqrs CommandBus.execute + Map.set', nestCqrs],
    ['emmett in-memory event store append', emmettInMemory],
    ['emmett-sqlite event store append', emmettSqlite],
  ] as const) {
    try {
      rows.push(...(await run(name)));
    } catch (err) {
      rows.push({
        name,
        opsPerSec: 0,
        note: `could not run: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }
  return rows;
}

async function nestCqrs(name: string): Promise<Row[]> {
  const { Module, Injectable } = await import('@nestjs/common');
  const { NestFactory } = await import('@nestjs/core');
  const { CqrsModule, CommandBus, CommandHandler } = await import('@nestjs/cqrs');
  const map = new Map<string, number>();
  class Put {
    constructor(
      readonly key: string,
      readonly value: number,
    ) {}
  }
  class PutHandler {
    async execute(c: Put) {
      map.set(c.key, c.value);
    }
  }
  // The Deposit of the core rows as a Nest command: the handler reads the balance and sets the
  // account's object value (what appendonly's handler + `@On` projection do, with no log).
  const accounts = new Map<string, Account>();
  class NestDeposit {
    constructor(
      readonly account: string,
      readonly amount: number,
    ) {}
  }
  class NestDepositHandler {
    async execute(c: NestDeposit) {
      const balance = (accounts.get(c.account)?.balance ?? 0) + c.amount;
      accounts.set(c.account, { balance, last: c.amount });
    }
  }
  CommandHandler(Put)(PutHandler);
  Injectable()(PutHandler);
  CommandHandler(NestDeposit)(NestDepositHandler);
  Injectable()(NestDepositHandler);
  class BenchModule {}
  Module({ imports: [CqrsModule.forRoot()], providers: [PutHandler, NestDepositHandler] })(BenchModule);
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  await app.init();
  const bus = app.get(CommandBus);
  const total = quick ? 100_000 : 500_000;
  const rows: Row[] = [];
  const commands: [string, string, (i: number) => Promise<unknown>][] = [
    [
      'Deposit (Map.get + Map.set of an object)',
      'appendonly memory store, Deposit',
      (i) => bus.execute(new NestDeposit(`key:${i % 100_000}`, 1 + (i % 100))),
    ],
    [
      'single SET',
      'appendonly memory store, single SET',
      (i) => bus.execute(new Put(`key:${i % 100_000}`, i)),
    ],
  ];
  for (const [label, reference, command] of commands) {
    for (const inFlight of [1, 64]) {
      progress(`peers: ${name}, ${label}, ${inFlight} in flight`);
      await runWindow(20_000, inFlight, command);
      const r = await runWindow(total, inFlight, command);
      rows.push({ name: `${name}, ${inFlight} in flight, ${label}`, ...r, reference, note: 'no log at all' });
    }
  }
  await app.close();
  return rows;
}

async function emmettInMemory(name: string): Promise<Row[]> {
  const { getInMemoryEventStore } = await import('@event-driven-io/emmett');
  const total = quick ? 50_000 : 200_000;
  const rows: Row[] = [];
  for (const inFlight of [1, 64]) {
    progress(`peers: ${name}, ${inFlight} in flight`);
    const store = getInMemoryEventStore();
    const r = await runWindow(total, inFlight, (i) =>
      store.appendToStream(`key-${i % 1000}`, [
        { type: 'KeySet', data: { key: `key:${i % 100_000}`, value: i } },
      ]),
    );
    rows.push({ name: `${name}, ${inFlight} in flight`, ...r });
    if (inFlight === 64) {
      const started = process.hrtime.bigint();
      let events = 0;
      for (let s = 0; s < 1000; s++) events += (await store.readStream(`key-${s}`)).events.length;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      rows.push({
        name: `${name}: read back (replay)`,
        opsPerSec: events / seconds,
        note: `${events} events`,
      });
    }
  }
  return rows;
}

/**
 * Emmett's SQLite store runs in a child process per case: with concurrent appends it fails with
 * SQLITE_BUSY and then crashes its process from an unhandled statement error, which must not
 * take the whole benchmark down. The row then says how it failed.
 */
async function emmettSqlite(name: string): Promise<Row[]> {
  const { spawnSync } = await import('node:child_process');
  const rows: Row[] = [];
  for (const inFlight of [1, 64]) {
    progress(`peers: ${name}, ${inFlight} in flight (child process)`);
    const child = spawnSync(
      process.execPath,
      [__filename, '--emmett-sqlite-child', String(inFlight), ...(quick ? ['--quick'] : [])],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    const result = child.stdout.split('\n').find((l) => l.startsWith('{'));
    if (child.status === 0 && result !== undefined) {
      rows.push({ name: `${name}, ${inFlight} in flight`, ...(JSON.parse(result) as Omit<Row, 'name'>) });
    } else {
      const why =
        child.stderr.split('\n').find((l) => /SQLITE_\w+/.test(l)) ?? `exit ${child.status ?? child.signal}`;
      rows.push({
        name: `${name}, ${inFlight} in flight`,
        opsPerSec: 0,
        note: `fails: ${why.trim().slice(0, 80)}`,
      });
    }
  }
  return rows;
}

async function emmettSqliteChild(inFlight: number): Promise<void> {
  const { getSQLiteEventStore } = await import('@event-driven-io/emmett-sqlite');
  const dir = mkdtempSync(path.join(tmpdir(), 'appendonly-bench-emmett-'));
  try {
    const store = getSQLiteEventStore({
      fileName: path.join(dir, 'emmett.db'),
      schema: { autoMigration: 'CreateOrUpdate' },
    });
    const total = inFlight === 1 ? (quick ? 500 : 2000) : quick ? 2000 : 10_000;
    const r = await runWindow(total, inFlight, (i) =>
      store.appendToStream(`key-${i % 1000}`, [
        { type: 'KeySet', data: { key: `key:${i % 100_000}`, value: i } },
      ]),
    );
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const childFlag = process.argv.indexOf('--emmett-sqlite-child');
if (childFlag >= 0) {
  emmettSqliteChild(Number(process.argv[childFlag + 1])).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
} else if (require.main === module) {
  benchPeers().then((rows) => process.stdout.write(`${formatTable('Peers, same work', rows)}\n`));
}
