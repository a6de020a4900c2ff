import 'reflect-metadata';
import { benchCore } from './core';
import { benchPeers } from './peers';
import { formatTable } from './measure';

/** `npm run bench` (`-- --quick` for a short run): every figure beside its reference, measured in the same run. */
async function main(): Promise<void> {
  const sections: [string, () => Promise<import('./measure').Row[]>][] = [
    ['Core: bus + state + memory store', benchCore],
    ['Peers, same work', benchPeers],
  ];
  for (const [title, run] of sections) process.stdout.write(`${formatTable(title, await run())}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
