import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { barChart } from './chart';
import { benchCore } from './core';
import { describeMachine } from './machine';
import { formatTable, quick, type Row } from './measure';
import { benchPeers } from './peers';

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
    `appendonly benchmarks, ${quick ? 'quick' : 'full'} run, ${machine.date}\n${machine.cpu} × ${machine.cores}, ${machine.memoryGiB} GiB, Node ${machine.node}, disk ${machine.disk}\n`,
  );
  const plan: [string, () => Promise<Row[]>][] = [
    ['Core: bus + state + memory store', benchCore],
    ['Peers, same work', benchPeers],
  ];
  const sections: Section[] = [];
  for (const [title, run] of plan) {
    const rows = await run();
    sections.push({ title, rows });
    process.stdout.write(`${formatTable(title, rows)}\n`);
  }
  const out = path.resolve(__dirname, '../../bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'latest.json'), `${JSON.stringify({ machine, quick, sections }, null, 2)}\n`);
  const chartSections = sections.filter((s) => !/replay|compaction/i.test(s.title));
  writeFileSync(path.join(out, 'latest.svg'), barChart(`appendonly: commands/s (${machine.date.slice(0, 10)})`, chartSections));
  process.stdout.write(`\nwrote ${path.relative(process.cwd(), path.join(out, 'latest.json'))} and latest.svg\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
