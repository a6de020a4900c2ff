import 'reflect-metadata';
import { InvalidEventError, KeyValueState, type StateChange } from 'appendonly';

describe('KeyValueState', () => {
  it('rolls a command back to exactly the state before it: sets, deletes and clears', () => {
    // given
    const kv = new KeyValueState();
    kv.set('a', 1);
    kv.set('b', { nested: true });
    // when a command changes, deletes, clears and sets again, then fails
    kv.begin();
    kv.set('a', 2);
    kv.set('c', 3);
    kv.delete('b');
    kv.clear();
    kv.set('d', 4);
    kv.set('a', 5);
    kv.rollback();
    // then
    expect(kv.toObject()).toEqual({ a: 1, b: { nested: true } });
    expect(kv.size).toBe(2);
  });

  it('reads what was last written or undone, whatever was read before (the last-key cache)', () => {
    // given a key read, then written twice in one command, each write read back
    const kv = new KeyValueState();
    kv.set('a', 1);
    expect(kv.get('a')).toBe(1);
    kv.begin();
    kv.set('a', 2);
    expect(kv.get('a')).toBe(2);
    kv.delete('a');
    expect(kv.get('a')).toBeUndefined();
    kv.set('a', 3);
    expect(kv.get('a')).toBe(3);
    // when the command fails
    kv.rollback();
    // then every read sees the value before it, and the count follows
    expect(kv.get('a')).toBe(1);
    expect(kv.has('a')).toBe(true);
    expect(kv.size).toBe(1);
    // and a clear, a snapshot's writes and a reload are seen by the next read of the same key
    kv.clear();
    expect(kv.get('a')).toBeUndefined();
    kv.set('a', 4);
    const snapshot = kv.takeSnapshot(1);
    expect(kv.get('a')).toBe(4);
    kv.set('a', 5);
    expect(kv.get('a')).toBe(5);
    snapshot.release();
    expect(kv.get('a')).toBe(5);
    const fresh = new KeyValueState();
    fresh.set('a', 6);
    expect(fresh.get('a')).toBe(6);
    kv.replaceWith(fresh);
    expect(kv.get('a')).toBe(6);
    expect(fresh.get('a')).toBeUndefined();
  });

  it('reports changes only once their command is applied, never for rolled-back work', () => {
    const kv = new KeyValueState();
    const seen: StateChange[] = [];
    kv.changes$.subscribe((c) => seen.push(c));
    kv.begin();
    kv.set('x', 1);
    kv.rollback();
    expect(seen).toEqual([]);
    kv.begin();
    kv.set('y', 2);
    kv.delete('y');
    kv.clear();
    expect(seen).toEqual([]);
    kv.commit();
    expect(seen).toEqual([
      { type: 'set', key: 'y', value: 2 },
      { type: 'delete', key: 'y' },
      { type: 'clear' },
    ]);
  });

  it('keeps a snapshot frozen while the state moves on, then merges', () => {
    // given
    const kv = new KeyValueState();
    for (let i = 0; i < 5; i++) kv.set(`k${i}`, i);
    // when a snapshot is taken and the state keeps changing, including a clear
    const snap = kv.takeSnapshot(5);
    kv.set('k0', 'changed');
    kv.delete('k1');
    kv.set('new', true);
    expect(kv.toObject()).toEqual({ k0: 'changed', k2: 2, k3: 3, k4: 4, new: true });
    const frozen = Object.fromEntries(snap.entries());
    kv.clear();
    kv.set('after-clear', 1);
    // then the snapshot still shows the state when it was taken
    expect(frozen).toEqual({ k0: 0, k1: 1, k2: 2, k3: 3, k4: 4 });
    expect(Object.fromEntries(snap.entries())).toEqual(frozen);
    expect(snap.size).toBe(5);
    expect(kv.toObject()).toEqual({ 'after-clear': 1 });
    snap.release();
    expect(kv.toObject()).toEqual({ 'after-clear': 1 });
    expect(kv.size).toBe(1);
    // and a rollback across an open snapshot restores the overlay view
    const again = kv.takeSnapshot(6);
    kv.begin();
    kv.set('after-clear', 2);
    kv.clear();
    kv.rollback();
    expect(kv.toObject()).toEqual({ 'after-clear': 1 });
    again.release();
    expect(kv.get('after-clear')).toBe(1);
  });

  it('replaceWith takes a reloaded state whole: an open snapshot stays frozen, changes$ says clear then every key', () => {
    // given: a state whose compaction snapshot is open, with a write since, and a listener
    const kv = new KeyValueState();
    kv.set('old', 1);
    kv.set('kept', 1);
    const snap = kv.takeSnapshot(2);
    kv.set('since', 1);
    const seen: StateChange[] = [];
    kv.changes$.subscribe((c) => seen.push(c));
    const fresh = new KeyValueState();
    fresh.set('kept', 2);
    fresh.set('new', 3);
    // when
    kv.replaceWith(fresh);
    // then: the new content, its size; the snapshot still shows what it was taken on
    expect(kv.toObject()).toEqual({ kept: 2, new: 3 });
    expect(kv.size).toBe(2);
    expect(Object.fromEntries(snap.entries())).toEqual({ old: 1, kept: 1 });
    expect(seen).toEqual([
      { type: 'clear' },
      { type: 'set', key: 'kept', value: 2 },
      { type: 'set', key: 'new', value: 3 },
    ]);
    // its release merges nothing into the new state, and the state goes on as any other
    snap.release();
    expect(kv.toObject()).toEqual({ kept: 2, new: 3 });
    kv.takeSnapshot(4).release();
    kv.delete('kept');
    expect(kv.toObject()).toEqual({ new: 3 });
    expect(fresh.size).toBe(0);
  });

  it('refuses a second open snapshot', () => {
    const kv = new KeyValueState();
    const s = kv.takeSnapshot(0);
    expect(() => kv.takeSnapshot(0)).toThrow(/already open/);
    s.release();
    kv.takeSnapshot(0).release();
  });

  it('refuses values JSON cannot carry', () => {
    const kv = new KeyValueState();
    expect(() => kv.set('d', new Date() as never)).toThrow(InvalidEventError);
    expect(() => kv.set('n', Number.POSITIVE_INFINITY)).toThrow(/Infinity/);
    expect(() => kv.set(1 as never, 1)).toThrow(/must be a string/);
    expect(kv.size).toBe(0);
  });
});
