/** Where the framework and the stores report what an operator should know (repairs, slow disks, retries). */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Writes warnings and errors to stderr, info to stdout, each line prefixed with `appendonly:`. */
export const consoleLogger: Logger = {
  info: (m) => process.stdout.write(`appendonly: ${m}\n`),
  warn: (m) => process.stderr.write(`appendonly: warning: ${m}\n`),
  error: (m) => process.stderr.write(`appendonly: error: ${m}\n`),
};

/** Discards everything (for tests and tools that print their own output). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
