import { type Observable, Subject } from 'rxjs';
import { assertJsonValue, isJsonValue, type JsonValue } from '../events/json';
import { InvalidEventError } from '../errors';
import type { StateSnapshot } from '../store/snapshot-source';
import type { ProjectionState } from './projection-state';
import type { ReadonlyKeyValueState } from './readonly-state';
import type { StateChange } from './state-change';

/** Marks a key deleted in the overlay while a snapshot holds the base. */
const TOMBSTONE = Symbol('deleted');
type Slot = JsonValue | typeof TOMBSTONE;

/** Marks, in the undo journal, that the whole structure was replaced by `clear()`. */
const CLEARED = Symbol('cleared');
interface SavedStructure {
  readonly base: Map<string, JsonValue>;
  readonly overlay: Map<string, Slot> | null;
  readonly hidesBase: boolean;
  readonly size: number;
  /** The snapshot open when it was saved (`-1`: none): an undo in another one cannot put the overlay back as it was. */
  readonly epoch: number;
}

/**
 * The in-memory key-value state that projections write and everyone reads. Values are JSON and
 * treated as immutable: nothing here copies them.
 *
 * Two mechanisms keep it cheap:
 * - an undo journal, open while one command is applied, so that a throwing handler or projection
 *   rolls the state back to before the command (semantics point 2);
 * - copy-on-write snapshots for compaction: while a snapshot is open the base map is frozen and
 *   writes go to an overlay, so a snapshot costs O(1) to take and the rewrite reads a state that
 *   does not move. Invariant: `base` is never mutated while `overlay` is non-null.
 */
export class KeyValueState implements ReadonlyKeyValueState {
  private base = new Map<string, JsonValue>();
  private overlay: Map<string, Slot> | null = null;
  /** True after a clear() while a snapshot is open: the base no longer shows through. */
  private hidesBase = false;
  private count = 0;
  /** Identifies the open snapshot, so that a stale `release()` cannot merge a newer overlay. */
  private snapshotId = 0;

  /**
   * The undo journal: parallel arrays reused from command to command (resizing an array costs
   * more than the command itself), `journalLength` entries long, -1 outside a command.
   */
  private readonly journalKeys: (string | typeof CLEARED)[] = [];
  private readonly journalValues: (JsonValue | undefined | SavedStructure)[] = [];
  private journalLength = -1;
  /** Where the current command's entries start in the journal. */
  private commandStart = 0;
  /** The mark of journal index 0: marks stay valid when `forget()` shifts the arrays. */
  private journalBase = 0;
  /** The journal was opened by `begin(true)`: it outlives commands. */
  private retained = false;
  private pending: StateChange[] = [];
  private readonly changes = new Subject<StateChange>();
  /**
   * The last key read or written and what `get` gives for it. A command's handler reads the key
   * its projection then writes, and the write needs the previous value for the undo journal:
   * this spares the second lookup in a map of millions of keys (a cache miss each). Invariant:
   * while `cachedKey` is a string, `get(cachedKey)` would return `cachedValue`; every change of
   * the structure updates the pair or drops it (`cachedKey = undefined`).
   */
  private cachedKey: string | undefined = undefined;
  private cachedValue: JsonValue | undefined = undefined;

  /** See {@link ReadonlyKeyValueState.changes$}. */
  readonly changes$: Observable<StateChange> = this.changes.asObservable();

  /** @internal True while someone listens to `changes$`. */
  get observed(): boolean {
    return this.changes.observed;
  }

  /** The number of keys. */
  get size(): number {
    return this.count;
  }

  /** The value of `key`, or undefined. */
  get(key: string): JsonValue | undefined {
    if (key === this.cachedKey) return this.cachedValue;
    let value: JsonValue | undefined;
    if (this.overlay !== null) {
      const slot = this.overlay.get(key);
      if (slot !== undefined) value = slot === TOMBSTONE ? undefined : slot;
      else value = this.hidesBase ? undefined : this.base.get(key);
    } else {
      value = this.base.get(key);
    }
    if (typeof key === 'string') {
      this.cachedKey = key;
      this.cachedValue = value;
    }
    return value;
  }

  /** True when `key` has a value. */
  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Sets `key` to a JSON value; throws `InvalidEventError` for anything JSON cannot carry. */
  set(key: string, value: JsonValue): void {
    if (typeof key !== 'string')
      throw new InvalidEventError(`a state key must be a string, got ${typeof key}`);
    if (!isJsonValue(value)) assertJsonValue(value, `state key ${JSON.stringify(key)}`);
    this.write(key, value);
  }

  /** Deletes `key`; returns whether it existed. */
  delete(key: string): boolean {
    const previous = this.get(key);
    if (previous === undefined) return false;
    this.remember(key, previous);
    if (this.overlay !== null) this.overlay.set(key, TOMBSTONE);
    else this.base.delete(key);
    this.cachedValue = undefined; // get(key) above made `key` the cached one
    this.count--;
    if (this.changes.observed) this.emit({ type: 'delete', key });
    return true;
  }

  /** Removes every key. O(1): the old structure is dropped (or kept for the undo journal). */
  clear(): void {
    if (this.journalLength >= 0) {
      const i = this.journalLength++;
      this.journalKeys[i] = CLEARED;
      this.journalValues[i] = {
        base: this.base,
        overlay: this.overlay,
        hidesBase: this.hidesBase,
        size: this.count,
        epoch: this.epoch(),
      };
    }
    if (this.overlay !== null) {
      this.overlay = new Map();
      this.hidesBase = true;
    } else {
      this.base = new Map();
    }
    this.cachedKey = undefined;
    this.count = 0;
    if (this.changes.observed) this.emit({ type: 'clear' });
  }

  /** The keys, in no promised order. */
  *keys(): IterableIterator<string> {
    for (const [key] of this.entries()) yield key;
  }

  /** The entries, in no promised order. */
  *entries(): IterableIterator<[string, JsonValue]> {
    const overlay = this.overlay;
    if (overlay === null) {
      yield* this.base.entries();
      return;
    }
    for (const [key, slot] of overlay) if (slot !== TOMBSTONE) yield [key, slot];
    if (this.hidesBase) return;
    for (const entry of this.base) if (!overlay.has(entry[0])) yield entry;
  }

  /** A plain copy of the state, for tests and comparisons. */
  toObject(): Record<string, JsonValue> {
    const out: Record<string, JsonValue> = {};
    for (const [key, value] of this.entries()) out[key] = value;
    return out;
  }

  /**
   * @internal Starts recording undo information for one command. With `retain` (a shared log,
   * where a command applied may still be refused by the store), the journal is kept after
   * `commit()`, from command to command, until `forget()`: `rollbackTo(mark)` then undoes
   * several commands at once. Returns the command's mark.
   */
  begin(retain = false): number {
    this.retained = retain;
    if (!retain || this.journalLength < 0) {
      this.journalLength = 0;
      this.journalBase = 0;
    }
    this.commandStart = this.journalLength;
    if (this.pending.length !== 0) this.pending = [];
    return this.journalBase + this.journalLength;
  }

  /** @internal Keeps the command's changes and reports them on `changes$`. */
  commit(retain = false): void {
    if (!retain) this.endJournal();
    if (this.pending.length > 0) {
      const changes = this.pending;
      this.pending = [];
      for (const change of changes) this.changes.next(change);
    }
  }

  /** @internal Undoes everything since the last `begin()`, newest first. */
  rollback(): void {
    const keep = this.commandStart;
    this.undo(this.commandStart);
    // A retained journal stays open: the commands still in flight hold marks into it.
    if (keep === 0 && !this.retained) this.endJournal();
    else this.journalLength = keep;
  }

  /**
   * @internal Undoes every retained command from the one whose `begin()` returned `mark`, newest
   * first, and closes the journal: the state is then as it was before that command.
   */
  rollbackTo(mark: number): void {
    this.undo(Math.max(0, mark - this.journalBase));
    this.endJournal();
  }

  /**
   * @internal The commands before `mark` are durable: their undo information is dropped.
   * `forget(Infinity)`: nothing is in flight, and the journal closes (writes outside commands
   * then cost no lookup). Invariant: a mark handed out by `begin` stays valid until then, so the
   * journal never closes, nor restarts its numbering, while a command in flight holds one.
   */
  forget(mark: number): void {
    if (this.journalLength < 0) return;
    if (mark === Number.POSITIVE_INFINITY) {
      this.endJournal();
      return;
    }
    const drop = mark - this.journalBase;
    if (drop <= 0) return;
    if (drop >= this.journalLength) {
      const values = this.journalValues;
      for (let i = 0; i < this.journalLength; i++) values[i] = undefined;
      this.journalBase += this.journalLength;
      this.journalLength = 0;
      this.commandStart = 0;
      return;
    }
    // Shift only when most of the journal is dead, so each entry is moved O(1) times on average.
    if (drop < 4096 || drop * 2 < this.journalLength) return;
    const keys = this.journalKeys;
    const values = this.journalValues;
    keys.copyWithin(0, drop, this.journalLength);
    values.copyWithin(0, drop, this.journalLength);
    for (let i = this.journalLength - drop; i < this.journalLength; i++) values[i] = undefined;
    this.journalLength -= drop;
    this.commandStart = Math.max(0, this.commandStart - drop);
    this.journalBase += drop;
  }

  private undo(from: number): void {
    const keys = this.journalKeys;
    const values = this.journalValues;
    if (this.pending.length !== 0) this.pending = [];
    for (let i = this.journalLength - 1; i >= from; i--) {
      const key = keys[i];
      if (key === CLEARED) {
        this.unclear(values[i] as SavedStructure);
        continue;
      }
      const previous = values[i] as JsonValue | undefined;
      const current = this.get(key);
      // What the key holds once undone, below: the cache says so, for the next entry of the same key.
      this.cachedValue = previous;
      if (previous === undefined) {
        if (current !== undefined) {
          if (this.overlay !== null) this.overlay.set(key, TOMBSTONE);
          else this.base.delete(key);
          this.count--;
        }
      } else {
        if (current === undefined) this.count++;
        if (this.overlay !== null) this.overlay.set(key, previous);
        else this.base.set(key, previous);
      }
    }
    for (let i = from; i < this.journalLength; i++) values[i] = undefined;
    this.journalLength = from;
  }

  /** Which snapshot is open now (`-1`: none). */
  private epoch(): number {
    return this.overlay !== null ? this.snapshotId : -1;
  }

  /**
   * Puts back the structure a `clear()` replaced. Within the same snapshot (or none) that is the
   * saved structure itself. A retained journal can outlive a snapshot (a compaction released it,
   * or took another, between the clear and a conflict's rollback): the saved overlay then belongs
   * to no open snapshot, so the content is rebuilt — into the open snapshot's overlay, leaving its
   * frozen base alone, or as the base when none is open. O(keys), on that rare path only.
   */
  private unclear(saved: SavedStructure): void {
    this.cachedKey = undefined;
    if (saved.epoch === this.epoch()) {
      this.base = saved.base;
      this.overlay = saved.overlay;
      this.hidesBase = saved.hidesBase;
      this.count = saved.size;
      return;
    }
    const content = new Map<string, JsonValue>();
    if (saved.overlay === null || !saved.hidesBase) for (const [k, v] of saved.base) content.set(k, v);
    if (saved.overlay !== null) {
      for (const [k, slot] of saved.overlay) {
        if (slot === TOMBSTONE) content.delete(k);
        else content.set(k, slot);
      }
    }
    if (this.overlay !== null) {
      this.overlay = new Map(content);
      this.hidesBase = true;
    } else {
      this.base = content;
      this.hidesBase = false;
    }
    this.count = content.size;
  }

  /** Closes the journal, dropping its references (a cleared map must not outlive its command). */
  private endJournal(): void {
    const values = this.journalValues;
    for (let i = 0; i < this.journalLength; i++) values[i] = undefined;
    this.journalLength = -1;
    this.commandStart = 0;
    this.journalBase = 0;
  }

  /** @internal Sets a value known to be JSON (read from the log, or checked with its event), skipping validation. */
  load(key: string, value: JsonValue): void {
    this.write(key, value);
  }

  /**
   * @internal Takes a copy-on-write snapshot (see the class comment). Only one may be open;
   * `release()` merges the overlay back into the base in O(writes since the snapshot).
   */
  takeSnapshot(seq: number): StateSnapshot {
    if (this.overlay !== null) throw new Error('a snapshot of the state is already open');
    const frozen = this.base;
    const size = this.count;
    const id = ++this.snapshotId;
    this.overlay = new Map();
    this.hidesBase = false;
    let released = false;
    return {
      seq,
      size,
      entries: () => frozen.entries(),
      release: () => {
        if (released) return;
        released = true;
        if (id === this.snapshotId) this.mergeOverlay();
      },
    };
  }

  private mergeOverlay(): void {
    const overlay = this.overlay;
    if (overlay === null) return;
    // What `get` gives does not change here, so the cached pair stays true.
    if (this.hidesBase) this.base = new Map();
    for (const [key, slot] of overlay) {
      if (slot === TOMBSTONE) this.base.delete(key);
      else this.base.set(key, slot);
    }
    this.overlay = null;
    this.hidesBase = false;
  }

  private write(key: string, value: JsonValue): void {
    if (this.overlay === null && this.journalLength < 0) {
      // Replay and loads: no undo to record, so no lookup of the previous value.
      const base = this.base;
      const before = base.size;
      base.set(key, value);
      this.cachedKey = key;
      this.cachedValue = value;
      this.count += base.size - before;
      if (this.changes.observed) this.emit({ type: 'set', key, value });
      return;
    }
    const previous = this.get(key);
    this.remember(key, previous);
    if (this.overlay !== null) this.overlay.set(key, value);
    else this.base.set(key, value);
    this.cachedValue = value; // get(key) above made `key` the cached one
    if (previous === undefined) this.count++;
    if (this.changes.observed) this.emit({ type: 'set', key, value });
  }

  /** Inside a command, changes wait for its commit: a rolled-back change is never reported. */
  private emit(change: StateChange): void {
    if (this.journalLength >= 0) this.pending.push(change);
    else this.changes.next(change);
  }

  private remember(key: string, previous: JsonValue | undefined): void {
    if (this.journalLength < 0) return;
    const i = this.journalLength++;
    this.journalKeys[i] = key;
    this.journalValues[i] = previous;
  }

  /**
   * @internal Takes the content of `fresh` (a reload from the log, built off to the side) in one
   * step, O(1): a reader sees the old state or the new, never half of one. `fresh` is left empty.
   * An open snapshot keeps its frozen base (its `release()` no longer merges anything). Reported
   * on `changes$`, when someone listens, as a clear and then a set of every key.
   */
  replaceWith(fresh: KeyValueState): void {
    if (fresh.overlay !== null || fresh.journalLength >= 0)
      throw new Error('replaceWith takes a state with no open snapshot and no journal');
    this.snapshotId++;
    this.cachedKey = undefined;
    fresh.cachedKey = undefined;
    this.base = fresh.base;
    this.overlay = null;
    this.hidesBase = false;
    this.count = fresh.count;
    this.endJournal();
    this.pending = [];
    fresh.base = new Map();
    fresh.count = 0;
    if (!this.changes.observed) return;
    this.changes.next({ type: 'clear' });
    for (const [key, value] of this.base) this.changes.next({ type: 'set', key, value });
  }

  /** @internal Ends `changes$`. */
  complete(): void {
    this.changes.complete();
  }
}

/** A writable facade without transaction methods: what projections get. */
export function projectionView(state: KeyValueState): ProjectionState {
  return Object.assign(readonlyView(state), {
    set: (key: string, value: JsonValue) => state.set(key, value),
    delete: (key: string) => state.delete(key),
    clear: () => state.clear(),
  });
}

/** A read-only facade over a state: what `app.state` and injected handlers get. */
export function readonlyView(state: KeyValueState): ReadonlyKeyValueState {
  return {
    get: (key) => state.get(key),
    has: (key) => state.has(key),
    get size() {
      return state.size;
    },
    keys: () => state.keys(),
    entries: () => state.entries(),
    changes$: state.changes$,
  };
}
