import 'reflect-metadata';
import { AppendonlyError, createApp } from 'appendonly';
import { bank, Deposit, GetBalance, Transfer, Withdraw } from './domain';
import { makeStore } from './store';

/**
 * The `npm start` demo: a tiny bank on appendonly. Run it twice: the second run replays the log
 * written by the first and starts from the balances it left.
 */
async function main(): Promise<void> {
  const kind = argValue('--store') ?? process.env.APPENDONLY_STORE ?? 'aof';
  const dataDir = argValue('--data') ?? process.env.APPENDONLY_DATA ?? './data';
  const store = makeStore(kind, dataDir);
  const app = await createApp({ ...bank, store });
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const balances = async () => {
    const [alice, bob] = await Promise.all([
      app.query<number>(new GetBalance('alice')),
      app.query<number>(new GetBalance('bob')),
    ]);
    return `alice ${alice}, bob ${bob}`;
  };

  const loaded = app.stats();
  say(
    `Opened the ${kind} store${kind === 'memory' ? '' : ` in ${dataDir}`}: loaded ${loaded.entriesReplayed} keys from the last compaction and replayed ${loaded.groupsReplayed} commands after it.`,
  );
  say(`Balances after replay: ${await balances()}.`);

  const attempt = async (what: string, command: object) => {
    try {
      const result = await app.execute(command);
      say(
        `✔ ${what}: logged as event${result.events.length > 1 ? 's' : ''} #${result.firstSeq}${result.lastSeq > result.firstSeq ? `-#${result.lastSeq}` : ''}.`,
      );
    } catch (err) {
      if (!(err instanceof AppendonlyError)) throw err;
      say(`✘ ${what}: refused (${err.message}); nothing was logged.`);
    }
  };

  await attempt('alice deposits 100', new Deposit('alice', 100));
  await attempt('bob deposits 20', new Deposit('bob', 20));
  await attempt('alice withdraws 30', new Withdraw('alice', 30));
  await attempt('bob withdraws 500', new Withdraw('bob', 500));
  await attempt(
    'alice transfers 50 to bob (two events, one atomic command)',
    new Transfer('alice', 'bob', 50),
  );
  await attempt('alice transfers 1000 to bob', new Transfer('alice', 'bob', 1000));
  say(`Balances now: ${await balances()}.`);

  const before = app.stats().store?.currentSize;
  const compaction = await app.compact();
  say(
    `Compacted the log (like BGREWRITEAOF): ${compaction.keys} keys as the new base, ${before} → ${compaction.sizeAfter} ${kind === 'memory' ? 'records' : 'bytes'}.`,
  );
  const s = app.stats();
  say(
    `Persistence: appendfsync=${s.store?.appendfsync ?? '-'}, last write ${s.store?.lastWriteStatus ?? '-'}, ${s.store?.rewrites ?? 0} rewrite(s), last seq #${s.lastSeq}.`,
  );
  await app.close();
  say(kind === 'memory' ? 'Closed.' : `Closed. Run again: the balances come back from ${dataDir}.`);
}

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

main().catch((err: unknown) => {
  process.stderr.write(`bank demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
