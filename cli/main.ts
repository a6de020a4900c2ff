#!/usr/bin/env node
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { AppendonlyError } from '../src/index';
import { cat } from './commands/cat';
import { check } from './commands/check';
import { consumers } from './commands/consumers';
import { convert } from './commands/convert';
import { info } from './commands/info';
import { rewrite } from './commands/rewrite';
import { strip } from './commands/strip';
import { truncate } from './commands/truncate';
import { CliError, EXIT_INVALID, EXIT_USAGE } from './errors';

/*
 * The `appendonly` bin. Each command returns its exit code; anything thrown becomes one line on
 * stderr: a CliError carries its own code, a usage error from commander gives 2, anything
 * else 1. Commander's own output (help, unknown options) is left as it is.
 */

const PATH_HELP =
  'a data folder holding appendonlydir/ (AOF store), a .db file (SQLite-WAL store), or postgres://…?log=NAME&schema=SCHEMA (PostgreSQL store)';

/**
 * The version in the package's own package.json, read at run time: the first package.json named
 * `appendonly` from this file's folder upward, which is ../ from cli/main.ts (the sources, under
 * ts-jest or test/support/register.js) and ../../ from dist/cli/main.js (a build, or the
 * installed package: npm always ships package.json at the package's root).
 */
function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'appendonly' && typeof pkg.version === 'string') return pkg.version;
    }
    if (path.dirname(dir) === dir)
      throw new Error(`appendonly's package.json not found in ${__dirname} or a folder above it`);
  }
}

function build(run: (code: Promise<number>) => void): Command {
  const program = new Command('appendonly')
    .description('Inspect, check, repair and convert appendonly logs (AOF folders and SQLite-WAL .db files).')
    .version(packageVersion())
    .showHelpAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 1 the log is invalid or the operation was refused, 2 unusable arguments.
Every command that writes a log (check --fix, strip, truncate, rewrite, convert) asks first on a terminal;
-y, --yes skips the question, and without a terminal --yes is required. The destructive ones (all but
convert, which writes a new log) write a backup first and print its path, and refuse to run while a live
process holds the store's lock.

PostgreSQL logs: PATH is the connection string, the log named by the tool's own query parameters
log= (default "default") and schema= (default "appendonly"), removed before connecting:
postgres://user@host/db?log=bank&schema=appendonly. The password is never printed. check, info, cat
and convert (from, or to a new log) work on them; strip, truncate, rewrite and check --fix refuse.

Examples:
  $ appendonly check ./data
  $ appendonly cat ./data --json | jq .type
  $ appendonly info 'postgres://app@db.internal/app?log=bank'
  $ appendonly convert ./data 'postgres://app@db.internal/app?log=bank' --yes`,
    );

  program
    .command('check')
    .description(
      'validate every file of the log; report the last good offset (AOF, as redis-check-aof) or sequence (SQLite)',
    )
    .argument('<path>', PATH_HELP)
    .option('--fix', 'cut a damaged tail back to the last good record (saved to a side file, after a backup)')
    .option('-y, --yes', 'with --fix: do not ask for confirmation')
    .addHelpText('after', '\nExamples:\n  $ appendonly check ./data\n  $ appendonly check ./data --fix --yes')
    .action((p: string, o: { fix?: boolean; yes?: boolean }) => run(check(p, o)));

  program
    .command('info')
    .description(
      'record and event counts by type, file sizes, first and last timestamps, key count after replay',
    )
    .argument('<path>', PATH_HELP)
    .option('--app <module>', 'a module exporting { handlers, projections } to replay user events')
    .option('--json', 'one JSON object')
    .addHelpText(
      'after',
      '\nExamples:\n  $ appendonly info ./data\n  $ appendonly info ./data --app ./dist/app.js --json',
    )
    .action((p: string, o: { app?: string; json?: boolean }) => run(info(p, o)));

  program
    .command('cat')
    .description(
      'print the records in order with sequence numbers, times, versions, ids and metadata, one a line',
    )
    .argument('<path>', PATH_HELP)
    .option('--json', 'JSON Lines, for jq')
    .option('--app <module>', "the app's module: its event definitions upcast older events")
    .option('--as-logged', 'with --app: show each event at the version it was logged at')
    .addHelpText(
      'after',
      '\nExamples:\n  $ appendonly cat ./data\n  $ appendonly cat ./app.db --json | jq \'select(.type == "FLUSHALL")\'\n  $ appendonly cat ./data --app ./dist/app.js',
    )
    .action((p: string, o: { json?: boolean; app?: string; asLogged?: boolean }) => run(cat(p, o)));

  program
    .command('rewrite')
    .description('offline compaction: the same result as app.compact()')
    .argument('<path>', PATH_HELP)
    .option(
      '--app <module>',
      'a module exporting { handlers, projections }, needed when the log holds user events',
    )
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nExamples:\n  $ appendonly rewrite ./data\n  $ appendonly rewrite ./data --app ./dist/app.js --yes',
    )
    .action((p: string, o: { app?: string; yes?: boolean }) => run(rewrite(p, o)));

  program
    .command('truncate')
    .description('point-in-time recovery: drop every command after a sequence number or a time')
    .argument('<path>', PATH_HELP)
    .addOption(
      new Option('--to-seq <n>', 'keep the commands up to sequence number n').conflicts('toTimestamp'),
    )
    .addOption(
      new Option(
        '--to-timestamp <t>',
        'keep the commands up to unix time t (seconds; needs #TS annotations)',
      ),
    )
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nExamples:\n  $ appendonly truncate ./data --to-seq 41200\n  $ appendonly truncate ./data --to-timestamp 1764064800 --yes',
    )
    .action((p: string, o: { toSeq?: string; toTimestamp?: string; yes?: boolean }) => run(truncate(p, o)));

  program
    .command('strip')
    .description('remove the records of one event type from the incr files (undo an accidental FLUSHALL)')
    .argument('<path>', PATH_HELP)
    .requiredOption('--type <type>', 'the event type to remove (FLUSHALL, DEL, or a user event type)')
    .option('--last', 'remove only the last record of that type')
    .option(
      '--from-history',
      'AOF: when a compaction came after it, rebuild the log from appendonlydir/history/ (keepHistory: true)',
    )
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nExamples:\n  $ appendonly strip ./data --type FLUSHALL --last\n  $ appendonly strip ./data --type FLUSHALL --last --yes',
    )
    .action((p: string, o: { type: string; last?: boolean; fromHistory?: boolean; yes?: boolean }) =>
      run(strip(p, o)),
    );

  program
    .command('consumers')
    .description('list the durable consumers (position, lag, parked events); retry or drop parked events')
    .argument('<path>', PATH_HELP)
    .argument('[action]', 'list (default), retry or drop')
    .argument('[name]', 'retry / drop: the consumer')
    .argument('[seqs...]', 'retry / drop: the parked events, by seq')
    .option('--all', 'retry / drop: every parked event of the consumer')
    .option('--json', 'list: one JSON object')
    .option('-y, --yes', 'retry / drop: do not ask for confirmation')
    .addHelpText(
      'after',
      "\nRetry marks parked events to be handed to the handler again when the consumer next starts;\nretry and drop take the store's lock (stop the app first; PostgreSQL: stop the consumer).\n\nExamples:\n  $ appendonly consumers ./data\n  $ appendonly consumers ./data retry mailer 41 --yes\n  $ appendonly consumers ./app.db drop mailer --all --yes",
    )
    .action(
      (
        p: string,
        action: string | undefined,
        name: string | undefined,
        seqs: string[],
        o: { json?: boolean; all?: boolean; yes?: boolean },
      ) => run(consumers(p, action, name, seqs, o)),
    );

  program
    .command('convert')
    .description(
      'copy a log to another store kind (AOF folder ↔ SQLite .db ↔ PostgreSQL); the target must be new or empty',
    )
    .argument('<from>', PATH_HELP)
    .argument(
      '<to>',
      'a .db file (SQLite-WAL store), a folder (AOF store) or postgres://…?log=NAME (a new log)',
    )
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nExamples:\n  $ appendonly convert ./data ./app.db\n  $ appendonly convert ./app.db ./data-aof --yes',
    )
    .action((from: string, to: string, o: { yes?: boolean }) => run(convert(from, to, o)));
  return program;
}

function fail(err: unknown): number {
  if (err instanceof CliError) {
    process.stderr.write(`appendonly: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof AppendonlyError || err instanceof Error) {
    process.stderr.write(`appendonly: ${err.message}\n`);
    return EXIT_INVALID;
  }
  process.stderr.write(`appendonly: ${String(err)}\n`);
  return EXIT_INVALID;
}

/** Runs the tool with `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let pending: Promise<number> | null = null;
  const program = build((code) => {
    pending = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    return fail(err);
  }
  if (pending === null) return 0;
  try {
    return await (pending as Promise<number>);
  } catch (err) {
    return fail(err);
  }
}

if (require.main === module) {
  // `appendonly cat ./data | head`: a reader that goes away is the end of the output, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.exitCode = fail(err);
    },
  );
}
