import type { DomainEvent, EventGroup, JsonValue } from '../../src/index';
import { crc32 } from './crc';
import { bytesEqual, type RespEncoder, type RespScanner, utf8 } from './resp';

/*
 * Event groups ↔ RESP, in the shapes docs/ARCHITECTURE.md gives (the AOF format):
 *   user event        *2 <type> <JSON(data)>
 *   SET               *3 SET <key> <JSON(value)>
 *   DEL               *N DEL <key>…
 *   FLUSHALL          *1 FLUSHALL
 * several events are wrapped in MULTI … EXEC; `#TS:<unix s>` may precede a group, and
 * `#CRC:<crc32 hex>` follows it, covering every byte of the group from its first annotation
 * (or record) to the CRC line. Built-in names are matched case-sensitively: a user event may be
 * called `set`, and is then a two-argument record that must not be read as Redis's SET.
 */

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

export const W_SET = ascii('SET');
export const W_DEL = ascii('DEL');
export const W_FLUSHALL = ascii('FLUSHALL');
export const W_MULTI = ascii('MULTI');
export const W_EXEC = ascii('EXEC');

const SET_PREFIX = ascii('*3\r\n$3\r\nSET\r\n');
const DEL_NAME = ascii('$3\r\nDEL\r\n');
const FLUSHALL_RECORD = ascii('*1\r\n$8\r\nFLUSHALL\r\n');
const MULTI_RECORD = ascii('*1\r\n$5\r\nMULTI\r\n');
const EXEC_RECORD = ascii('*1\r\n$4\r\nEXEC\r\n');
const EVENT_PREFIX = ascii('*2\r\n');

/** Formats a CRC32 as the 8 lowercase hex digits of a `#CRC:` annotation. */
export function crcHex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}

/** Encodes one event as one RESP command. */
export function encodeEvent(enc: RespEncoder, event: DomainEvent): void {
  const type = event.type;
  if (type === 'SET') {
    const data = event.data as { key: string; value: JsonValue };
    enc.raw(SET_PREFIX);
    enc.bulk(data.key);
    enc.bulk(JSON.stringify(data.value));
  } else if (type === 'DEL') {
    const keys = (event.data as { keys: readonly string[] }).keys;
    enc.arrayHeader(1 + keys.length);
    enc.raw(DEL_NAME);
    for (let i = 0; i < keys.length; i++) enc.bulk(keys[i]);
  } else if (type === 'FLUSHALL') {
    enc.raw(FLUSHALL_RECORD);
  } else {
    enc.raw(EVENT_PREFIX);
    enc.bulk(type);
    enc.bulk(JSON.stringify(event.data));
  }
}

/**
 * Encodes a group as its records and its `#CRC` line. `tsSeconds` ≥ 0 writes a `#TS:` annotation
 * first. If encoding throws, the encoder is cut back to where the group started: never half a group.
 */
export function encodeGroup(enc: RespEncoder, group: EventGroup, tsSeconds: number): void {
  const start = enc.length;
  try {
    if (tsSeconds >= 0) enc.annotation(`TS:${tsSeconds}`);
    const events = group.events;
    if (events.length === 1) {
      encodeEvent(enc, events[0]);
    } else {
      enc.raw(MULTI_RECORD);
      for (let i = 0; i < events.length; i++) encodeEvent(enc, events[i]);
      enc.raw(EXEC_RECORD);
    }
    enc.crcLine(crc32(enc.buf, start, enc.length));
  } catch (err) {
    enc.truncate(start);
    throw err;
  }
}

/** Encodes one key of a snapshot as the `SET key json` record of a base file, with its `#CRC`. */
export function encodeBaseEntry(enc: RespEncoder, key: string, value: JsonValue): void {
  const start = enc.length;
  enc.raw(SET_PREFIX);
  enc.bulk(key);
  enc.bulk(JSON.stringify(value));
  enc.crcLine(crc32(enc.buf, start, enc.length));
}

/** A record that is well-formed RESP but not one of ours; `expected` says what should be there. */
export class RecordFormatError extends Error {
  constructor(
    readonly at: number,
    readonly expected: string,
  ) {
    super(expected);
  }
}

/** What a scanned command is, before it is decoded into an event. */
export const CMD_EVENT = 0;
export const CMD_MULTI = 1;
export const CMD_EXEC = 2;

/** Classifies the command in the scanner as MULTI, EXEC or an event. */
export function commandKind(buf: Buffer, sc: RespScanner): number {
  if (sc.argc === 1) {
    const s = sc.argStart[0];
    const e = sc.argEnd[0];
    if (bytesEqual(buf, s, e, W_MULTI)) return CMD_MULTI;
    if (bytesEqual(buf, s, e, W_EXEC)) return CMD_EXEC;
  }
  return CMD_EVENT;
}

/** True when the command in the scanner is `SET key value`: the record that {@link SetBatch} decodes. */
export function isSetRecord(buf: Buffer, sc: RespScanner): boolean {
  return sc.argc === 3 && bytesEqual(buf, sc.argStart[0], sc.argEnd[0], W_SET);
}

/**
 * A JSON integer of at most 15 digits in canonical form (`-?(0|[1-9][0-9]*)`), read straight from
 * the bytes: exactly what JSON.parse gives for it (such integers are exact doubles), without a
 * string or a parser. Counters, amounts and ids are often such; anything else returns undefined.
 */
export function smallInteger(buf: Buffer, start: number, end: number): number | undefined {
  let p = start;
  const negative = buf[p] === 45;
  if (negative) p++;
  const n = end - p;
  if (n < 1 || n > 15 || (buf[p] === 48 && n > 1)) return undefined;
  let v = 0;
  for (; p < end; p++) {
    const d = buf[p] - 48;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  return negative ? -v : v;
}

function parseJson(buf: Buffer, start: number, end: number, what: string): JsonValue {
  const int = smallInteger(buf, start, end);
  if (int !== undefined) return int;
  try {
    return JSON.parse(utf8(buf, start, end)) as JsonValue;
  } catch (err) {
    throw new RecordFormatError(start, `${what} as JSON (${(err as Error).message})`);
  }
}

/** Decodes the command in the scanner (not MULTI/EXEC) into an event; throws {@link RecordFormatError}. */
export function decodeEvent(buf: Buffer, sc: RespScanner): DomainEvent {
  const argc = sc.argc;
  const s0 = sc.argStart[0];
  const e0 = sc.argEnd[0];
  if (bytesEqual(buf, s0, e0, W_SET)) {
    if (argc !== 3)
      throw new RecordFormatError(s0, `SET with 2 arguments (key, JSON value), not ${argc - 1}`);
    const key = utf8(buf, sc.argStart[1], sc.argEnd[1]);
    return {
      type: 'SET',
      data: { key, value: parseJson(buf, sc.argStart[2], sc.argEnd[2], 'the value of SET') },
    };
  }
  if (bytesEqual(buf, s0, e0, W_DEL)) {
    const keys: string[] = new Array(argc - 1);
    for (let i = 1; i < argc; i++) keys[i - 1] = utf8(buf, sc.argStart[i], sc.argEnd[i]);
    return { type: 'DEL', data: { keys } };
  }
  if (bytesEqual(buf, s0, e0, W_FLUSHALL)) {
    if (argc !== 1) throw new RecordFormatError(s0, `FLUSHALL with no arguments, not ${argc - 1}`);
    return { type: 'FLUSHALL', data: {} };
  }
  if (argc !== 2) {
    throw new RecordFormatError(s0, `an event record of 2 arguments (type, JSON data), not ${argc}`);
  }
  if (e0 === s0) throw new RecordFormatError(s0, 'a non-empty event type');
  const type = utf8(buf, s0, e0);
  return { type, data: parseJson(buf, sc.argStart[1], sc.argEnd[1], `the data of event ${type}`) };
}
