import { type DriverProblem, MissingDriverError } from '../../src/index';

/*
 * The database drivers are optional peer dependencies: a user installs the one its store needs,
 * and an AOF-only app never installs (or compiles) better-sqlite3. An adapter loads its driver
 * through loadDriver when it is first imported, so that a missing driver, or one whose native
 * build npm skipped, fails right there with one line naming what to run, instead of a stack
 * trace from deep inside the driver on the first open. Adding a store's driver is one entry in
 * OPTIONAL_DRIVERS (and its line in package.json's peerDependencies and devDependencies).
 */

/** What the error message says about an optional driver. */
export interface OptionalDriver {
  /** The entry point that needs it, as the user imports it. */
  readonly adapter: string;
  /** True when the driver has a native binding built by its install script. */
  readonly native: boolean;
}

/** The optional drivers (and the framework peers an integration needs), by npm package name. */
export const OPTIONAL_DRIVERS = {
  'better-sqlite3': { adapter: 'appendonly/adapters/sqlite-wal', native: true },
  pg: { adapter: 'appendonly/adapters/postgres', native: false },
  '@nestjs/common': { adapter: 'appendonly/nestjs', native: false },
  '@nestjs/core': { adapter: 'appendonly/nestjs', native: false },
  '@opentelemetry/api': { adapter: 'appendonly/opentelemetry', native: false },
} as const satisfies Readonly<Record<string, OptionalDriver>>;

/** The npm name of an optional driver. */
export type DriverName = keyof typeof OPTIONAL_DRIVERS;

/** The one line for `problem`: what is wrong and the command to run. */
export function driverMessage(driver: DriverName, problem: DriverProblem): string {
  const { adapter } = OPTIONAL_DRIVERS[driver];
  switch (problem) {
    case 'missing':
      return `${adapter} needs the ${driver} package, which is not installed: run \`npm install ${driver}\``;
    case 'not-built':
      // npm 11 skips the install scripts that package.json's allowScripts does not list.
      return (
        `${adapter}: ${driver} is installed but its native build is missing (npm skipped its install script): ` +
        `run \`npm approve-scripts ${driver} && npm rebuild ${driver}\``
      );
    case 'wrong-abi':
      return `${adapter}: ${driver} was built for another Node.js version (${process.version} here): run \`npm rebuild ${driver}\``;
  }
}

/**
 * Loads the optional driver `name` with `load` (the caller's own `require`, so that it resolves
 * from the adapter's place in node_modules), then runs `probe` on it: a native driver loads its
 * binding lazily, so only a probe that uses it proves the build is there. Throws
 * {@link MissingDriverError} when either fails for want of the driver; any other error is the
 * driver's own and is rethrown as it is.
 */
export function loadDriver<T>(
  name: DriverName,
  load: (id: string) => unknown,
  probe?: (driver: T) => void,
): T {
  let driver: T;
  try {
    driver = load(name) as T;
  } catch (err) {
    if (isNotFound(err, name)) throw driverError(name, 'missing', err);
    throw err;
  }
  if (probe === undefined) return driver;
  try {
    probe(driver);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes('NODE_MODULE_VERSION')) throw driverError(name, 'wrong-abi', err);
    if (OPTIONAL_DRIVERS[name].native && isMissingBinding(err, message))
      throw driverError(name, 'not-built', err);
    throw err;
  }
  return driver;
}

function driverError(name: DriverName, problem: DriverProblem, cause: unknown): MissingDriverError {
  return new MissingDriverError(name, problem, driverMessage(name, problem), { cause });
}

/** The package itself is not installed (not a module it requires: that is a broken install, rethrown). */
function isNotFound(err: unknown, name: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return (
    e?.code === 'MODULE_NOT_FOUND' &&
    typeof e.message === 'string' &&
    e.message.split('\n')[0].includes(`'${name}'`)
  );
}

/** The `bindings` package's error, or a `.node` file that is not there. */
function isMissingBinding(err: unknown, message: string): boolean {
  return (
    message.startsWith('Could not locate the bindings file') ||
    ((err as { code?: unknown } | null)?.code === 'MODULE_NOT_FOUND' && message.includes('.node'))
  );
}
