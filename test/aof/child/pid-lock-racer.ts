// Races for the pid-file lock (the fallback of other systems, forced on Linux). Reads lines
// `go <round> <dir> <startAtMs>` on stdin; at startAtMs (spinning, so that every racer starts at
// the same moment) it takes the lock on <dir> and prints `won <round> <pid>` or
// `locked <round>`, or `error <round> <message>`. It never releases: each round has its own folder.
import * as readline from 'node:readline';
import { StoreLockedError } from 'appendonly';
import { acquireDirLock } from '../../../adapters/common/dir-lock';

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const [word, round, dir, startAt] = line.split(' ');
  if (word !== 'go') return;
  while (Date.now() < Number(startAt)) {
    // spin
  }
  acquireDirLock(dir, 'racer', 'pid-file').then(
    () => process.stdout.write(`won ${round} ${process.pid}\n`),
    (err: unknown) =>
      process.stdout.write(
        err instanceof StoreLockedError ? `locked ${round}\n` : `error ${round} ${(err as Error).message}\n`,
      ),
  );
});
