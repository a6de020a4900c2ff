// Runs runStoreConformance under node:test (`node --test -r ./test/support/register.js this-file`),
// on the store that CONFORMANCE_STORE names: `memory` (MemoryStore), `drops-last-group` (the
// store below, which loses its last command on replay), or `no-api` (MemoryStore, without
// passing node:test's functions: there are no globals to fall back to).
import 'reflect-metadata';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  AppClosedError,
  type CompactionResult,
  type EventGroup,
  type EventStore,
  type JsonValue,
  MemoryStore,
  type ReplayRecord,
  type StoreContext,
  type StoreOpenInfo,
  type StoreStats,
  StoreLockedError,
} from 'appendonly';
import { runStoreConformance } from 'appendonly/testing';

/**
 * A small in-memory store, correct but for one bug: its replay drops the last command logged
 * since the last compaction (a torn tail nobody reported).
 */
class DropsLastGroupStore implements EventStore {
  readonly kind = 'drops-last-group';
  private context: StoreContext | null = null;
  private snapshot: { seq: number; entries: [string, JsonValue][] } | null = null;
  private groups: EventGroup[] = [];
  private lastSeq = 0;
  private rewrites = 0;

  async open(context: StoreContext): Promise<StoreOpenInfo> {
    if (this.context !== null) throw new StoreLockedError('already open');
    this.context = context;
    return { kind: this.kind, location: 'memory', created: this.lastSeq === 0, sizeBytes: 0 };
  }

  async *replay(): AsyncIterable<readonly ReplayRecord[]> {
    const out: ReplayRecord[] = [];
    if (this.snapshot !== null) {
      out.push({ kind: 'snapshot', seq: this.snapshot.seq });
      for (const [key, value] of this.snapshot.entries) out.push({ kind: 'entry', key, value });
    }
    // The bug: the last group is left out.
    for (const g of this.groups.slice(0, -1))
      out.push({ kind: 'group', seq: g.seq, time: g.time, events: g.events });
    if (out.length > 0) yield out;
  }

  async append(group: EventGroup): Promise<void> {
    if (this.context === null) throw new AppClosedError('closed');
    this.groups.push(group);
    this.lastSeq = group.seq + group.events.length - 1;
  }

  async compact(): Promise<CompactionResult> {
    if (this.context === null) throw new AppClosedError('closed');
    const sizeBefore = (this.snapshot?.entries.length ?? 0) + this.groups.length;
    const snap = this.context.snapshots.takeSnapshot();
    try {
      this.snapshot = { seq: snap.seq, entries: [...snap.entries()] };
      this.groups = this.groups.filter((g) => g.seq > snap.seq);
    } finally {
      snap.release();
    }
    this.rewrites++;
    return {
      seq: this.snapshot.seq,
      keys: this.snapshot.entries.length,
      sizeBefore,
      sizeAfter: this.snapshot.entries.length + this.groups.length,
      durationMs: 0,
    };
  }

  async recover(): Promise<void> {}

  replayProgress(): { bytesRead: number; bytesTotal: number } {
    return { bytesRead: 0, bytesTotal: 0 };
  }

  stats(): StoreStats {
    const size = (this.snapshot?.entries.length ?? 0) + this.groups.length;
    return {
      kind: this.kind,
      appendfsync: 'always',
      rewriteInProgress: false,
      rewriteScheduled: false,
      lastRewriteTimeSec: -1,
      currentRewriteTimeSec: -1,
      lastBgrewriteStatus: 'ok',
      rewrites: this.rewrites,
      rewritesConsecutiveFailures: 0,
      lastWriteStatus: 'ok',
      currentSize: size,
      baseSize: this.snapshot?.entries.length ?? 0,
      bufferLength: 0,
      pendingBioFsync: 0,
      delayedFsync: 0,
      lastSeq: Math.max(this.lastSeq, this.snapshot?.seq ?? 0),
    };
  }

  async close(): Promise<void> {
    this.context = null;
  }
}

const which = process.env.CONFORMANCE_STORE;
const factory = () => {
  const store = which === 'drops-last-group' ? new DropsLastGroupStore() : new MemoryStore();
  return { open: () => store };
};
if (which === 'no-api') runStoreConformance('MemoryStore', factory);
else runStoreConformance(String(which), factory, { describe, it, beforeEach, afterEach });
