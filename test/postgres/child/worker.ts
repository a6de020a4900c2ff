/**
 * A child process on a PostgreSQL log, for the multi-process tests. argv: url log id mode.
 * It prints `ready` once its App has replayed the log; every line it prints is one synchronous
 * write, so a line read is a fact (an `ack` line: that command was acknowledged).
 *
 * Modes (what it writes):
 * - `mixed`: from a `go` line on stdin, Increment('counter') then a random Transfer between
 *   acct:0..4, in a loop, 16 loops at once, printing `ack <seq>` per acknowledged command
 *   (its last seq), until `stop`;
 * - `write`: at once, Put('w<id>:<i>', i) for i = 0, 1, …, 16 in flight, printing `ack <i>`
 *   once each is acknowledged, until `stop`;
 * - `retry-write`: as `write`, but a command refused with PersistenceError prints
 *   `refused <i> <code> <message>`, and that loop goes on with the next i 50 ms later;
 * - `follow`: nothing: an App on the log that only follows the others.
 *
 * Lines read on stdin, each answered by one line:
 * - `stop`: no new command; once those under way are acknowledged, `stopped <json>` with how
 *   many commands of each kind were acknowledged (`{ put, increment, transfer }`);
 * - `sync`: `app.sync()` (brings it to the log's head), then `state <json of the state>`;
 * - `stats`: `stats <json of app.stats()>`;
 * - `compact`: `app.compact()`, then `compacted <seq>` or `compact-failed <code> <message>`.
 * The App's logger prints `log <level> <message>` lines.
 */
import 'reflect-metadata';
import { writeSync } from 'node:fs';
import { createApp, type Logger, PersistenceError } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import { onLines } from '../../support/lines';
import { classes, Increment, Transfer } from '../domain';

const print = (line: string) => writeSync(1, `${line}\n`);

const logger: Logger = {
  info: () => {},
  warn: (m) => print(`log warn ${m.replace(/\n/g, ' ')}`),
  error: (m) => print(`log error ${m.replace(/\n/g, ' ')}`),
};

async function main(): Promise<void> {
  const [url, log, id, mode] = process.argv.slice(2);
  const store = new PostgresStore({ connectionString: url, log, appendfsync: 'always' });
  const app = await createApp({ ...classes, store, logger });
  const acked = { put: 0, increment: 0, transfer: 0 };
  let running = true;
  let load: Promise<unknown> = Promise.resolve();

  let seed = Number(id) * 7919 + 1;
  const random = (n: number) => {
    seed = (seed * 48271) % 2147483647;
    return seed % n;
  };
  let next = 0;
  const writer = async () => {
    while (running) {
      const i = next++;
      try {
        await app.execute(new fixtures.Put(`w${id}:${i}`, i));
      } catch (err) {
        if (mode !== 'retry-write' || !(err instanceof PersistenceError)) throw err;
        print(`refused ${i} ${err.code} ${err.message.replace(/\n/g, ' ')}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      acked.put++;
      print(`ack ${i}`);
    }
  };
  const mixer = async () => {
    while (running) {
      const inc = await app.execute(new Increment('counter'));
      acked.increment++;
      print(`ack ${inc.lastSeq}`);
      const move = await app.execute(new Transfer(`acct:${random(5)}`, `acct:${random(5)}`, 1 + random(50)));
      acked.transfer++;
      print(`ack ${move.lastSeq}`);
    }
  };
  const start = (loop: () => Promise<void>) => {
    load = Promise.all(Array.from({ length: 16 }, loop));
    // A command that fails (a conflict given up on, a write failure) ends the process: the
    // test sees it exit, and its stderr.
    load.catch(fail);
  };
  if (mode === 'write' || mode === 'retry-write') start(writer);

  const commands: Record<string, () => Promise<string>> = {
    go: async () => {
      if (mode === 'mixed') start(mixer);
      return 'going';
    },
    stop: async () => {
      running = false;
      await load;
      return `stopped ${JSON.stringify(acked)}`;
    },
    sync: async () => {
      await app.sync();
      return `state ${JSON.stringify(Object.fromEntries(app.state.entries()))}`;
    },
    stats: async () => `stats ${JSON.stringify(app.stats())}`,
    compact: () =>
      app.compact().then(
        (result) => `compacted ${result.seq}`,
        (err: Error & { code?: string }) => `compact-failed ${err.code} ${err.message}`,
      ),
  };
  onLines(process.stdin, (line) => {
    const command = commands[line];
    if (command === undefined) fail(new Error(`unknown command ${JSON.stringify(line)}`));
    void command().then(print, fail);
  });
  // stdin, read until the test kills the process, keeps it alive.
  print('ready');
}

function fail(err: unknown): never {
  writeSync(2, `${(err as Error).stack}\n`);
  process.exit(1);
}

main().catch(fail);
