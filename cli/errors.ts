/**
 * Exit codes of the `appendonly` tool, as redis-check-aof and most Unix tools use them:
 * 0 ok, 1 the log is invalid (or a command found it could not do its work on it),
 * 2 the arguments cannot be used (a path that does not exist, no manifest, not a log, a bad number).
 */
export const EXIT_OK = 0;
export const EXIT_INVALID = 1;
export const EXIT_USAGE = 2;

/**
 * An error the tool reports as one line on stderr with its exit code. Anything else thrown is
 * an unexpected failure: reported the same way, with exit code 1.
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_INVALID,
  ) {
    super(message);
  }
}

/** An argument that cannot be used: exit code 2. */
export function usage(message: string): CliError {
  return new CliError(message, EXIT_USAGE);
}

/** The log (or what the command found in it) does not allow the operation: exit code 1. */
export function invalid(message: string): CliError {
  return new CliError(message, EXIT_INVALID);
}

/** Parses a non-negative integer argument, or throws a usage error naming the option. */
export function parseCount(value: string, option: string): number {
  if (!/^\d{1,15}$/.test(value.trim()))
    throw usage(`${option}: not a non-negative integer: ${JSON.stringify(value)}`);
  return Number(value.trim());
}

/** `--to-seq` names an event inside a command, which is kept or dropped whole: exit 2. */
export function insideCommand(seq: number, first: number, last: number): CliError {
  return usage(
    `seq ${seq} is inside a command (seqs ${first} to ${last}, applied all or none): ` +
      `use --to-seq ${first - 1} or --to-seq ${last}`,
  );
}
