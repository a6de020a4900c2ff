import { ConfigError } from '../errors';
import { type FsyncPolicy, parseFsyncPolicy } from '../store/fsync-policy';

/** The options every durable store takes, named after Redis's AOF settings. */
export interface SharedStoreOptions {
  readonly appendfsync: FsyncPolicy;
  readonly autoRewritePercentage: number;
  readonly autoRewriteMinSize: number;
  readonly noAppendfsyncOnRewrite: boolean;
  readonly keepHistory: boolean;
  /**
   * Events a consumer may be behind at a compaction and still have its events kept for it;
   * further behind, it is marked stale and stops holding the log (see `src/kit/retention.ts`).
   */
  readonly maxConsumerLag: number;
}

/** Their names, for a store's list of known options. */
export const SHARED_OPTIONS: readonly (keyof SharedStoreOptions)[] = [
  'appendfsync',
  'autoRewritePercentage',
  'autoRewriteMinSize',
  'noAppendfsyncOnRewrite',
  'keepHistory',
  'maxConsumerLag',
];

/** Redis's defaults: everysec, 100 %, 64 MB. */
export const SHARED_DEFAULTS: SharedStoreOptions = {
  appendfsync: 'everysec',
  autoRewritePercentage: 100,
  autoRewriteMinSize: 64 * 1024 * 1024,
  noAppendfsyncOnRewrite: false,
  keepHistory: false,
  maxConsumerLag: 1_000_000,
};

/**
 * Reads a store's options, every message naming the store and the option, so that a typo fails
 * at construction, before anything is opened, and fails alike on every store.
 */
export class OptionReader {
  private readonly o: Record<string, unknown>;

  /** Throws unless `options` is an object whose every key is in `known`; `needs` says what it must hold. */
  constructor(
    readonly store: string,
    options: unknown,
    known: readonly string[],
    needs: string,
  ) {
    if (typeof options !== 'object' || options === null)
      throw new ConfigError(`${store} needs an options object with at least ${needs}`);
    for (const key of Object.keys(options)) {
      if (!known.includes(key)) {
        throw new ConfigError(
          `${store}: unknown option ${JSON.stringify(key)}; known options: ${known.join(', ')}`,
        );
      }
    }
    this.o = options as Record<string, unknown>;
  }

  /** The raw value of an option. */
  raw(name: string): unknown {
    return this.o[name];
  }

  /** A ConfigError naming the store. */
  error(message: string): ConfigError {
    return new ConfigError(`${this.store}: ${message}`);
  }

  /** The shared options, defaults filled in from `defaults` (Redis's unless a store differs). */
  shared(defaults: SharedStoreOptions = SHARED_DEFAULTS): SharedStoreOptions {
    const fsync = this.o.appendfsync;
    return {
      appendfsync:
        fsync === undefined ? defaults.appendfsync : parseFsyncPolicy(fsync, `${this.store}: appendfsync`),
      autoRewritePercentage: this.integer('autoRewritePercentage', defaults.autoRewritePercentage, 0),
      autoRewriteMinSize: this.integer('autoRewriteMinSize', defaults.autoRewriteMinSize, 0),
      noAppendfsyncOnRewrite: this.boolean('noAppendfsyncOnRewrite', defaults.noAppendfsyncOnRewrite),
      keepHistory: this.boolean('keepHistory', defaults.keepHistory),
      maxConsumerLag: this.integer('maxConsumerLag', defaults.maxConsumerLag, 0),
    };
  }

  /** A required non-empty string (a path). */
  path(name: string): string {
    const value = this.o[name];
    if (typeof value !== 'string' || value.length === 0)
      throw this.error(`${name} must be a non-empty string`);
    return value;
  }

  integer(name: string, fallback: number, min: number): number {
    const value = this.o[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
      throw this.error(`${name} must be an integer ≥ ${min}; got ${JSON.stringify(value)}`);
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.o[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean')
      throw this.error(`${name} must be true or false; got ${JSON.stringify(value)}`);
    return value;
  }
}
