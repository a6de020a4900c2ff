// Runs runStoreConformance under node:test (`node --test -r ./test/support/register.js this-file`),
// on the store that CONFORMANCE_STORE names: `memory` (MemoryStore), `drops-last-group` (the
// store below, which loses its last command on replay), or `no-api` (MemoryStore, without
// passing node:test's functions: there are no globals to fall back to).
import 'reflect-metadata';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  AppClosedError,
  type EventGroup,
  type EventStore,
  MemoryStore,
  type ReplayEnd,
  type ReplaySink,
  StoreLockedError,
  type StoreOpenInfo,
} from 'appendonly';
import { runStoreConformance } from 'appendonly/testing';

/**
 * A small in-memory store of the four methods, correct but for one bug: its replay drops the
 * last command logged (a torn tail nobody reported).
 */
class DropsLastGroupStore implements EventStore {
  readonly kind = 'drops-last-group';
  private open_ = false;
  private groups: EventGroup[] = [];

  async open(): Promise<StoreOpenInfo> {
    if (this.open_) throw new StoreLockedError('already open');
    this.open_ = true;
    return { kind: this.kind, location: 'memory', created: this.groups.length === 0, sizeBytes: 0 };
  }

  async replay(sink: ReplaySink): Promise<ReplayEnd> {
    // The bug: the last group is left out.
    const kept = this.groups.slice(0, -1);
    for (const g of kept) sink.group(g);
    const last = kept[kept.length - 1];
    return { lastSeq: last === undefined ? 0 : last.seq + last.events.length - 1 };
  }

  async append(group: EventGroup): Promise<void> {
    if (!this.open_) throw new AppClosedError('closed');
    this.groups.push(group);
  }

  async close(): Promise<void> {
    this.open_ = false;
  }
}

const which = process.env.CONFORMANCE_STORE;
const factory = () => {
  // One instance is the log; the first open's options make it (the memory store takes them).
  let store: EventStore | undefined;
  return {
    open: (options?: { maxConsumerLag?: number }) =>
      (store ??= which === 'drops-last-group' ? new DropsLastGroupStore() : new MemoryStore(options)),
  };
};
if (which === 'no-api') runStoreConformance('MemoryStore', factory);
else runStoreConformance(String(which), factory, { describe, it, beforeEach, afterEach });
