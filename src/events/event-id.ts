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
/** The two ASCII hex digits of each byte value, high digit first, at `2 * byte`. */
const HEX_DIGITS = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const digits = i.toString(16).padStart(2, '0');
  HEX_DIGITS[2 * i] = digits.charCodeAt(0);
  HEX_DIGITS[2 * i + 1] = digits.charCodeAt(1);
}
/**
 * Where an id is spelled before it becomes a string: the dashes never move, so they are written
 * once. Why not `+` on hex pairs: past 13 characters V8 makes each `+` a rope node, and an id is
 * kept (by the state's log, the memory store, the consumers' ring) as a tree of some twenty
 * heap objects that every GC then walks; one `latin1Slice` gives one flat string.
 */
const SPELLING = Buffer.alloc(36);
SPELLING[8] = SPELLING[13] = SPELLING[18] = SPELLING[23] = 0x2d; // '-'
/** The millisecond the first 13 characters of `SPELLING` spell (-1: none yet). */
let spelledTime = -1;

/** Writes byte `n`'s two hex digits at `at`. */
function spell(at: number, n: number): void {
  const d = (n & 255) << 1;
  SPELLING[at] = HEX_DIGITS[d];
  SPELLING[at + 1] = HEX_DIGITS[d + 1];
}

/** A new UUIDv7 for an event applied at `timeMs`. */
export function newEventId(timeMs: number): string {
  if (poolAt + 10 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  const r = poolAt;
  poolAt += 10;
  const t = Math.max(0, Math.floor(timeMs));
  if (t !== spelledTime) {
    // The 48-bit millisecond prefix: the same for every id of a command, and of most neighbours.
    const hi = Math.floor(t / 0x1000000) % 0x1000000; // the first 24 of 48 bits
    const lo = t % 0x1000000;
    spell(0, hi >> 16);
    spell(2, hi >> 8);
    spell(4, hi);
    spell(6, lo >> 16);
    spell(9, lo >> 8);
    spell(11, lo);
    spelledTime = t;
  }
  spell(14, 0x70 | (POOL[r] & 0x0f)); // version 7
  spell(16, POOL[r + 1]);
  spell(19, 0x80 | (POOL[r + 2] & 0x3f)); // variant 10
  spell(21, POOL[r + 3]);
  for (let i = 4; i < 10; i++) spell(24 + 2 * (i - 4), POOL[r + i]);
  // Buffer#latin1Slice: what toString('latin1', …) ends in, without its argument checks.
  return (SPELLING as unknown as { latin1Slice(start: number, end: number): string }).latin1Slice(0, 36);
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
