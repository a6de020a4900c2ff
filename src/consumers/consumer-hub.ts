import { AppClosedError, ConfigError, ConsumerError, LogCompactedError, StaleConsumerError } from '../errors';
import type { ConsumerLease, ConsumerRecord, EventStore } from '../store/event-store';
import {
  type ConsumerCapableStore,
  ConsumerRunner,
  type ConsumerSource,
  type RunnerOptions,
  type TakeOver,
} from './consumer-runner';
import type { ConsumerHandler, ConsumerStart, ConsumerStats, SubscribeOptions, Subscription } from './types';

const DEFAULTS: RunnerOptions = {
  maxAttempts: 5,
  retryDelayMs: 100,
  maxRetryDelayMs: 30_000,
  pageSize: 256,
  checkpointEvery: 1024,
  checkpointIntervalMs: 200,
};

/** True when `store` has every capability consumers need. */
export function canConsume(store: EventStore): store is ConsumerCapableStore {
  return (
    typeof store.read === 'function' &&
    typeof store.loadConsumers === 'function' &&
    typeof store.saveConsumer === 'function' &&
    typeof store.deleteConsumer === 'function'
  );
}

/**
 * The App's consumers: opens each (its stored record, or a new one from `from`), runs it, and
 * stops them all before the store closes. One name runs once per App; on a store with leases
 * (`holdConsumer`: a log several processes share), once across every instance: an App whose
 * lease is refused gets a standby subscription that takes over when the name is free.
 */
export class ConsumerHub {
  private readonly running = new Map<string, ConsumerRunner>();
  /** Names being opened, so that two `subscribe` calls of one name cannot both start. */
  private readonly opening = new Set<string>();
  /** How each running consumer was subscribed, so that `reset` can start it again as it was. */
  private readonly specs = new Map<string, { handler: ConsumerHandler; options: SubscribeOptions }>();
  /** The subscribes under way, which `closeAll` waits for: one that ends after it would run on. */
  private readonly opens = new Set<Promise<unknown>>();
  /** Set by `closeAll`: no consumer starts any more. */
  private closed = false;

  constructor(private readonly source: Omit<ConsumerSource, 'store'> & { readonly store: EventStore }) {}

  get(name: string): Subscription | undefined {
    return this.running.get(name);
  }

  /** Opens and starts the consumer `name`; refused once `closeAll` has begun. */
  subscribe(name: string, handler: ConsumerHandler, options: SubscribeOptions = {}): Promise<Subscription> {
    if (this.closed)
      return Promise.reject(new AppClosedError(`consumer ${JSON.stringify(name)}: the app is closing`));
    const opened = this.open(name, handler, options);
    this.opens.add(opened);
    const done = () => this.opens.delete(opened);
    opened.then(done, done);
    return opened;
  }

  private async open(
    name: string,
    handler: ConsumerHandler,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 200)
      throw new ConfigError(
        `a consumer's name must be a text of 1 to 200 characters; got ${JSON.stringify(name)}`,
      );
    if (typeof handler !== 'function')
      throw new ConfigError(`consumer ${JSON.stringify(name)}: the handler must be a function`);
    const store = this.source.store;
    if (!canConsume(store))
      throw new ConsumerError(
        name,
        `the ${store.kind} store cannot keep consumers (it has no read/loadConsumers/saveConsumer/deleteConsumer)`,
      );
    if (this.running.has(name) || this.opening.has(name))
      throw new ConsumerError(name, 'is already subscribed in this app');
    const o = resolveOptions(name, options);
    this.opening.add(name);
    try {
      const source: ConsumerSource = { ...this.source, store };
      const from = options.from ?? 'start';
      let lease: ConsumerLease | null = null;
      let takeOver: TakeOver | null = null;
      let record: ConsumerRecord;
      if (typeof store.holdConsumer === 'function') {
        const hold = store.holdConsumer.bind(store);
        // The record is loaded only under the lease: the last holder's saves all committed
        // before its lease went, so this sees its last position.
        const underLease = async (l: ConsumerLease): Promise<ConsumerRecord> => {
          try {
            return await this.openRecord(name, store, from, l);
          } catch (err) {
            await l.release();
            throw err;
          }
        };
        takeOver = async () => {
          const l = await hold(name);
          return l === null ? null : { lease: l, record: await underLease(l) };
        };
        lease = await hold(name);
        if (lease !== null) record = await underLease(lease);
        else
          record = (await store.loadConsumers()).find((r) => r.name === name) ?? {
            name,
            position: 0,
            parked: [],
          };
      } else {
        record = await this.openRecord(name, store, from, null);
      }
      // Closed while the record loaded: `closeAll` has already stopped the running ones.
      if (this.closed) {
        await lease?.release();
        throw new AppClosedError(`consumer ${JSON.stringify(name)}: the app is closing`);
      }
      const runner = new ConsumerRunner(
        name,
        handler,
        record,
        source,
        o,
        (r) => {
          if (this.running.get(name) === r) {
            this.running.delete(name);
            this.specs.delete(name);
          }
          if (this.running.size === 0) this.source.recent.keep(false);
        },
        lease,
        takeOver,
      );
      this.running.set(name, runner);
      this.specs.set(name, { handler, options });
      this.source.recent.keep(true);
      try {
        await runner.start();
      } catch (err) {
        await lease?.release();
        this.running.delete(name);
        this.specs.delete(name);
        if (this.running.size === 0) this.source.recent.keep(false);
        throw err;
      }
      return runner;
    } finally {
      this.opening.delete(name);
    }
  }

  /** The stored record, checked against the log, or a new one stored at once (so `from` applies once). */
  private async openRecord(
    name: string,
    store: ConsumerCapableStore,
    from: ConsumerStart,
    lease: ConsumerLease | null,
  ): Promise<ConsumerRecord> {
    const head = await this.source.head();
    const stored = (await store.loadConsumers()).find((r) => r.name === name);
    if (stored !== undefined) {
      if (stored.position > head) {
        throw new ConsumerError(
          name,
          `its stored position is seq ${stored.position}, beyond the end of the log (seq ${head}): the log was cut or replaced; remove the consumer (app.removeConsumer) to start it again`,
        );
      }
      if (stored.stale !== undefined) throw staleError(name, stored.stale);
      try {
        await store.read(stored.position, 1);
      } catch (err) {
        if (!(err instanceof LogCompactedError)) throw err;
        throw new StaleConsumerError(
          name,
          `the events after its position ${stored.position} are gone: ${err.message}`,
          {
            cause: err,
          },
        );
      }
      return stored;
    }
    const record: ConsumerRecord = {
      name,
      position: await this.startPosition(name, store, from, head),
      parked: [],
    };
    await (lease !== null ? lease.save(record) : store.saveConsumer(record));
    // Checked again once stored: a compaction that loaded the records before the save may have
    // dropped the events since the first check; from now on every compaction keeps them.
    try {
      await this.checkAvailable(name, store, record.position);
    } catch (err) {
      await store.deleteConsumer(name).catch(() => {});
      throw err;
    }
    return record;
  }

  /** Where `from` puts a consumer now; refused beyond the log's end or before what compaction left. */
  private async startPosition(
    name: string,
    store: ConsumerCapableStore,
    from: ConsumerStart,
    head: number,
  ): Promise<number> {
    let position: number;
    if (from === 'now') position = head;
    else if (from === 'start') position = 0;
    else if (
      typeof from === 'object' &&
      from !== null &&
      Number.isSafeInteger(from.after) &&
      from.after >= 0
    ) {
      if (from.after > head)
        throw new ConsumerError(name, `{ after: ${from.after} } is beyond the end of the log (seq ${head})`);
      position = from.after;
    } else {
      throw new ConfigError(
        `consumer ${JSON.stringify(name)}: from must be 'start', 'now' or { after: seq }; got ${JSON.stringify(from)}`,
      );
    }
    await this.checkAvailable(name, store, position);
    return position;
  }

  /** Refuses a start after `position` when compaction dropped the events after it. */
  private async checkAvailable(name: string, store: ConsumerCapableStore, position: number): Promise<void> {
    try {
      await store.read(position, 1);
    } catch (err) {
      if (!(err instanceof LogCompactedError)) throw err;
      throw new ConsumerError(
        name,
        `cannot start after seq ${position}: the events up to seq ${err.firstAvailable - 1} were compacted away before it existed; the first event it could get is seq ${err.firstAvailable}: subscribe with { from: { after: ${err.firstAvailable - 1} } } to start there`,
        { cause: err },
      );
    }
  }

  /**
   * Moves the consumer `name` to `from` and clears its stale mark, keeping its parked events: a
   * running consumer of the name (in this app) is stopped first and started again, with the
   * handler and options it was subscribed with. The record is deleted, then saved anew (a save
   * never clears a stale mark, see `EventStore.saveConsumer`): a crash in between leaves no record,
   * so the next `subscribe` starts at its own `from`. Refused (no record left) when the events
   * after `from` are gone once it is saved.
   */
  async reset(name: string, from: ConsumerStart): Promise<void> {
    const store = this.source.store;
    if (!canConsume(store)) throw new ConsumerError(name, `the ${store.kind} store cannot keep consumers`);
    if (this.opening.has(name)) throw new ConsumerError(name, 'is being subscribed; reset it once it runs');
    const spec = this.specs.get(name);
    const runner = this.running.get(name);
    const stored = (await store.loadConsumers()).find((r) => r.name === name);
    if (stored === undefined && runner === undefined)
      throw new ConsumerError(name, 'has no stored record to reset; subscribe it with { from } instead');
    const position = await this.startPosition(name, store, from, await this.source.head());
    await runner?.close();
    await store.deleteConsumer(name);
    await store.saveConsumer({ name, position, parked: stored?.parked ?? [] });
    // Checked again once stored, as a new subscription is: a compaction that loaded the records
    // while there was none may have dropped the events since the first check.
    try {
      await this.checkAvailable(name, store, position);
    } catch (err) {
      await store.deleteConsumer(name).catch(() => {});
      throw err;
    }
    if (runner !== undefined && spec !== undefined) await this.subscribe(name, spec.handler, spec.options);
  }

  /** Stops a running consumer of the name and forgets its record. */
  async remove(name: string): Promise<boolean> {
    await this.running.get(name)?.close();
    const store = this.source.store;
    if (!canConsume(store)) return false;
    return store.deleteConsumer(name);
  }

  /** The stats of every consumer running here. */
  stats(): ConsumerStats[] {
    return [...this.running.values()].map((r) => r.stats());
  }

  /**
   * Stops every consumer; each stores its position. A runner still starting (retrying its
   * dead letters) is stopped like the others; a subscribe still loading its record is waited
   * for, and refuses, so that no consumer is left running on a closed store.
   */
  async closeAll(): Promise<void> {
    this.closed = true;
    const stopAll = () => Promise.all([...this.running.values()].map((r) => r.close()));
    await stopAll();
    await Promise.allSettled([...this.opens]);
    await stopAll();
  }
}

/** A stored stale mark, as the error subscribe and the runner give. */
function staleError(name: string, stale: NonNullable<ConsumerRecord['stale']>): StaleConsumerError {
  return new StaleConsumerError(
    name,
    `a compaction at seq ${stale.seq} found it ${stale.lag} events behind (more than maxConsumerLag) and stopped keeping its events`,
  );
}

function resolveOptions(name: string, options: SubscribeOptions): RunnerOptions {
  const known = new Set([
    'from',
    'maxAttempts',
    'retryDelayMs',
    'maxRetryDelayMs',
    'pageSize',
    'checkpointEvery',
    'checkpointIntervalMs',
  ]);
  for (const k of Object.keys(options))
    if (!known.has(k))
      throw new ConfigError(`consumer ${JSON.stringify(name)}: unknown option ${JSON.stringify(k)}`);
  const int = (key: keyof RunnerOptions, min: number): number => {
    const v = options[key] ?? DEFAULTS[key];
    if (!Number.isSafeInteger(v) || v < min)
      throw new ConfigError(
        `consumer ${JSON.stringify(name)}: ${key} must be an integer >= ${min}; got ${JSON.stringify(v)}`,
      );
    return v;
  };
  return {
    maxAttempts: int('maxAttempts', 1),
    retryDelayMs: int('retryDelayMs', 0),
    maxRetryDelayMs: int('maxRetryDelayMs', 0),
    pageSize: int('pageSize', 1),
    checkpointEvery: int('checkpointEvery', 1),
    checkpointIntervalMs: int('checkpointIntervalMs', 0),
  };
}
