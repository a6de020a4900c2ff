import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { barChart } from './chart';
import { benchAof } from './aof';
import { benchCore } from './core';
import { describeMachine } from './machine';
import { formatTable, quick, type Row } from './measure';
import { benchPeers } from './peers';
import { benchPostgres } from './postgres';
import { benchReplayScaling } from './replay-scaling';
import { benchSqliteWal } from './sqlite-wal';
import { benchStores } from './stores';

/** A titled group of rows: one table on the terminal, one entry in latest.json. */
interface Section {
  readonly title: string;
  readonly rows: Row[];
}

/**
 * `npm run bench` (`-- --quick` for a run under two minutes): every figure beside its reference,
 * measured in the same run. Prints tables, writes bench/results/latest.json and latest.svg.
 */
async function main(): Promise<void> {
  const machine = describeMachine();
  process.stdout.write(
    `appendonly benchmarks, ${quick ? 'quick' : 'full'} run, ${machine.date}\n${machine.cpu} × ${machine.cores}, ${machine.memoryGiB} GiB, Node ${machine.node}, disk ${machine.disk}, load average ${machine.loadAverage}\n`,
  );
  const plan: [string, () => Promise<Section[]>][] = [
    ['core', async () => [{ title: 'Core: bus + state + memory store', rows: await benchCore() }]],
    [
      'stores',
      async () => [
        { title: 'Stores × policies (a Deposit, then a single SET, per command)', rows: await benchStores() },
      ],
    ],
    ['aof', () => benchAof()],
    [
      'sqlite',
      async () => [{ title: 'SQLite-WAL store against raw better-sqlite3', rows: await benchSqliteWal() }],
    ],
    [
      'replay-scaling',
      async () => [
        { title: 'Replay: time grows linearly, memory follows the state', rows: await benchReplayScaling() },
      ],
    ],
    ['peers', async () => [{ title: 'Peers, same work', rows: await benchPeers() }]],
    ['postgres', () => benchPostgres()],
  ];
  // `npm run bench -- stores peers` runs only those parts. `replay-scaling` is named as its file,
  // not `replay`: that is a part inside aof.js and postgres.js, run alone as `node dist/bench/aof.js replay`.
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const sections: Section[] = [];
  for (const [key, run] of plan) {
    if (only.length > 0 && !only.includes(key)) continue;
    for (const section of await run()) {
      sections.push(section);
      process.stdout.write(`${formatTable(section.title, section.rows)}\n`);
    }
  }
  // The committed record is the full run; a quick run writes beside it, and a run of some
  // sections writes under their names (latest-postgres.json), leaving the full record as it is.
  const name = `latest${only.length > 0 ? `-${only.join('-')}` : ''}${quick ? '-quick' : ''}`;
  const out = path.resolve(__dirname, '../../bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, `${name}.json`), `${JSON.stringify({ machine, quick, sections }, null, 2)}\n`);
  const chartSections = sections.filter((s) => /^(Core|Stores|Peers)/.test(s.title));
  const wrote = [`${name}.json`];
  if (chartSections.length > 0) {
    writeFileSync(
      path.join(out, `${name}.svg`),
      barChart(`appendonly: commands/s (${machine.date.slice(0, 10)})`, chartSections),
    );
    wrote.push(`${name}.svg`);
  }
  process.stdout.write(`\nwrote ${wrote.map((f) => `bench/results/${f}`).join(' and ')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
