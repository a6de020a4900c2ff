import { randomFillSync } from 'node:crypto';

/*
 * Event ids: a UUIDv7 (RFC 9562) per event, made once when the command is applied and logged
 * with it, so that a consumer can tell two events apart where a sequence number cannot (`strip`
 * renumbers, `truncate` and a lost everysec tail reuse numbers). The 48-bit millisecond prefix
 * makes ids of one log roughly time-ordered; the 74 random bits make a collision negligible.
 */

/** Random bytes drawn 4 KiB at a time: one syscall per 409 ids, not one per id. */
const POOL = Buffer.allocUnsafe(4096);
let poolAt = POOL.length;
const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

/** A new UUIDv7 for an event applied at `timeMs`. */
export function newEventId(timeMs: number): string {
  if (poolAt + 10 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const r = poolAt;
  poolAt += 10;
  const t = Math.max(0, Math.floor(timeMs));
  const hi = Math.floor(t / 0x1000000) % 0x1000000; // the first 24 of 48 bits
  const lo = t % 0x1000000;
  const h = (n: number) => HEX[n & 255];
  return (
    h(hi >> 16) +
    h(hi >> 8) +
    h(hi) +
    h(lo >> 16) +
    '-' +
    h(lo >> 8) +
    h(lo) +
    '-' +
    h(0x70 | (POOL[r] & 0x0f)) +
    h(POOL[r + 1]) +
    '-' +
    h(0x80 | (POOL[r + 2] & 0x3f)) +
    h(POOL[r + 3]) +
    '-' +
    h(POOL[r + 4]) +
    h(POOL[r + 5]) +
    h(POOL[r + 6]) +
    h(POOL[r + 7]) +
    h(POOL[r + 8]) +
    h(POOL[r + 9])
  );
}

/** `n` new ids for the events of one command applied at `timeMs`. */
export function newEventIds(n: number, timeMs: number): string[] {
  const ids: string[] = new Array(n);
  for (let i = 0; i < n; i++) ids[i] = newEventId(timeMs);
  return ids;
}

/**
 * The id of an event logged before events had ids (no envelope): derived from its sequence
 * number, `00000000-0000-8000-8000-<seq in 12 hex digits>` (a UUIDv8 that no UUIDv7 can equal).
 * Stable while the event keeps its seq: compaction, `convert` and `truncate` keep seqs, but
 * `strip` renumbers the events after one it removes, and their derived ids move with them (the
 * tools copy a legacy event as legacy; they do not invent an id for it).
 */
export function legacyEventId(seq: number): string {
  return `00000000-0000-8000-8000-${seq.toString(16).padStart(12, '0')}`;
}

/** An event id as the stores accept it: a UUID in lowercase hex with dashes. */
export const EVENT_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
