import type { DomainEvent, EventGroup, EventMetadata, JsonValue } from '../../src/index';
import { crc32 } from './crc';
import { bytesEqual, type RespEncoder, type RespScanner, utf8 } from './resp';

/*
 * Event groups ↔ RESP, in the shapes docs/ARCHITECTURE.md gives (the AOF format):
 *   user event        *2 <type> <JSON(data)>
 *   SET               *3 SET <key> <JSON(value)>
 *   DEL               *N DEL <key>…
 *   FLUSHALL          *1 FLUSHALL
 * several events are wrapped in MULTI … EXEC; the envelope, when the group has one, is a record
 * of its own before them (before MULTI):
 *   envelope          *2 @env <ids, comma-separated>      (the time is the first id's UUIDv7 ms)
 *                     *3..5 @env <ids> <time ms> [<versions, comma-separated> [<JSON(metadata)>]]
 * (`@` cannot start an event type, so no event is read as an envelope; versions is empty when
 * every event is version 1, ids empty for a group that has none); a reaction's group (one with
 * `consumer`) is always a MULTI … EXEC, and its consumer's position is a record inside it, last
 * before EXEC, so that the torn-tail cut keeps or drops the events and the position together:
 *   position          *4 @pos <consumer name> <position seq> <epoch>
 * (the epoch is the consumer record's in the consumers' file: a record moved back by a tool or
 * made again after a delete has a new one, and older @pos records no longer count for it);
 * `#TS:<unix s>` may precede a group, and
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
export const W_ENV = ascii('@env');
export const W_POS = ascii('@pos');

const SET_PREFIX = ascii('*3\r\n$3\r\nSET\r\n');
const DEL_NAME = ascii('$3\r\nDEL\r\n');
const FLUSHALL_RECORD = ascii('*1\r\n$8\r\nFLUSHALL\r\n');
const MULTI_RECORD = ascii('*1\r\n$5\r\nMULTI\r\n');
const EXEC_RECORD = ascii('*1\r\n$4\r\nEXEC\r\n');
const EVENT_PREFIX = ascii('*2\r\n');
const ENV_NAME = ascii('$4\r\n@env\r\n');
const ENV_SHORT_PREFIX = ascii('*2\r\n$4\r\n@env\r\n');
const POS_PREFIX = ascii('*4\r\n$4\r\n@pos\r\n');

/** A reaction's consumer position as its `@pos` record holds it. */
export interface LoggedPosition {
  readonly name: string;
  readonly position: number;
  readonly epoch: number;
}

/**
 * A group as the AOF store hands it to its writer: a reaction's group carries the epoch of its
 * consumer's record (see the `@pos` record above); 0 when absent.
 */
export type AofGroup = EventGroup & { readonly consumerEpoch?: number };

/** True when the command in the scanner is a `@pos` record. */
export function isPositionRecord(buf: Buffer, sc: RespScanner): boolean {
  return sc.argc === 4 && buf[sc.argStart[0]] === 64 && bytesEqual(buf, sc.argStart[0], sc.argEnd[0], W_POS);
}

/** Decodes the `@pos` record in the scanner; throws {@link RecordFormatError} naming what is wrong. */
export function decodePosition(buf: Buffer, sc: RespScanner): LoggedPosition {
  const a = sc.argStart;
  const e = sc.argEnd;
  if (e[1] === a[1]) throw new RecordFormatError(a[1], 'a consumer name in the @pos record');
  const position = smallInteger(buf, a[2], e[2]);
  if (position === undefined || position < 0)
    throw new RecordFormatError(a[2], 'the consumer position of the @pos record (a non-negative integer)');
  const epoch = smallInteger(buf, a[3], e[3]);
  if (epoch === undefined || epoch < 0)
    throw new RecordFormatError(a[3], 'the epoch of the @pos record (a non-negative integer)');
  return { name: utf8(buf, a[1], e[1]), position, epoch };
}

/** A group's envelope as read from its `@env` record. */
export interface Envelope {
  readonly time: number;
  readonly ids: readonly string[] | undefined;
  readonly versions: readonly number[] | undefined;
  readonly metadata: EventMetadata | undefined;
}

/** True when the group carries anything an envelope record holds (every group the App logs: its ids). */
export function hasEnvelope(group: EventGroup): boolean {
  return group.ids !== undefined || group.versions !== undefined || group.metadata !== undefined;
}

/**
 * Encodes the envelope record of `group`: the ids, then (only when needed) the time in ms, the
 * versions and the metadata. The group the App logs most (ids, no versions, no metadata, its
 * time the one its UUIDv7 ids carry in their first 48 bits) is `*2 @env <ids>`: the time is read
 * back from the first id, and costs no bytes.
 */
export function encodeEnvelope(enc: RespEncoder, group: EventGroup): void {
  const { ids, versions, metadata, events } = group;
  if (ids !== undefined) {
    if (ids.length !== events.length)
      throw new Error(`the group at seq ${group.seq} has ${ids.length} ids for ${events.length} events`);
    for (let i = 0; i < ids.length; i++)
      if (ids[i].length === 0 || ids[i].includes(','))
        throw new Error(`event id ${JSON.stringify(ids[i])} is empty or holds a comma`);
  }
  if (versions !== undefined && versions.length !== events.length)
    throw new Error(
      `the group at seq ${group.seq} has ${versions.length} versions for ${events.length} events`,
    );
  const idText = ids === undefined ? '' : ids.length === 1 ? ids[0] : ids.join(',');
  if (
    ids !== undefined &&
    versions === undefined &&
    metadata === undefined &&
    timeOfId(ids[0]) === group.time
  ) {
    enc.raw(ENV_SHORT_PREFIX);
    enc.bulk(idText);
    return;
  }
  const argc = metadata !== undefined ? 5 : versions !== undefined ? 4 : 3;
  enc.arrayHeader(argc);
  enc.raw(ENV_NAME);
  enc.bulk(idText);
  if (Number.isSafeInteger(group.time) && group.time >= 0) enc.bulkInteger(group.time);
  else enc.bulk(String(group.time));
  if (argc >= 4) enc.bulk(versions === undefined ? '' : versions.join(','));
  if (argc === 5) enc.bulkJson(metadata);
}

/**
 * The ms timestamp in the first 48 bits of a UUID (a UUIDv7's time), or -1 when `id` is not a
 * UUID in lowercase hex. Exactly what {@link timeOfIdBytes} reads back from the record, so the
 * short envelope is chosen only when its time can be read again; from the characters, with no
 * substring made.
 */
function timeOfId(id: string): number {
  if (id.length !== 36 || id.charCodeAt(8) !== 45) return -1;
  let t = 0;
  for (let i = 0; i < 13; i++) {
    if (i === 8) continue;
    const c = id.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    t = t * 16 + d;
  }
  return t;
}

/** {@link timeOfId} on the bytes of a record (lowercase hex only), or -1. */
function timeOfIdBytes(buf: Buffer, at: number, end: number): number {
  if (end - at < 36 || buf[at + 8] !== 45) return -1;
  let t = 0;
  for (let i = 0; i < 13; i++) {
    if (i === 8) continue;
    const c = buf[at + i];
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    t = t * 16 + d;
  }
  return t;
}

/**
 * The time of the `@env` record in the scanner when it names exactly one 36-byte id and no
 * versions: the short form `*2 @env <id>` (time: the id's first 48 bits) and `*3..5 @env <id>
 * <time> ['' [<metadata>]]` (the envelope of every command of one event the App logs); -1 for any
 * other form, a bad one included (then {@link decodeEnvelope} decides, and names what is wrong).
 * Exactly what {@link decodeEnvelope} reads from those forms but the metadata: the replay uses it
 * to keep no Envelope object and id array per command of one event.
 */
export function singleIdEnvelopeTime(buf: Buffer, sc: RespScanner): number {
  const a = sc.argStart;
  const e = sc.argEnd;
  const argc = sc.argc;
  if (e[1] - a[1] !== 36) return -1;
  if (argc === 2) return timeOfIdBytes(buf, a[1], e[1]);
  if (argc >= 4 && e[3] > a[3]) return -1;
  const time = smallInteger(buf, a[2], e[2]);
  return time === undefined || time < 0 ? -1 : time;
}

/** True when the command in the scanner is an `@env` record (the framer asks before anything else). */
export function isEnvelopeRecord(buf: Buffer, sc: RespScanner): boolean {
  const argc = sc.argc;
  return (
    argc >= 2 &&
    argc <= 5 &&
    buf[sc.argStart[0]] === 64 &&
    bytesEqual(buf, sc.argStart[0], sc.argEnd[0], W_ENV)
  );
}

/**
 * Decodes the `@env` record in the scanner; throws {@link RecordFormatError} naming what is wrong.
 * `withMetadata` false leaves the metadata (the 5th argument) to the caller: the replay batches
 * its parse with the events' data.
 */
export function decodeEnvelope(buf: Buffer, sc: RespScanner, withMetadata = true): Envelope {
  const a = sc.argStart;
  const e = sc.argEnd;
  const argc = sc.argc;
  let ids: string[] | undefined;
  const idLength = e[1] - a[1];
  if (idLength === 36) {
    ids = [utf8(buf, a[1], e[1])]; // one id: no split (the replay of a key-value log is this)
  } else if (idLength > 0) {
    ids = utf8(buf, a[1], e[1]).split(',');
    for (let i = 0; i < ids.length; i++)
      if (ids[i].length === 0) throw new RecordFormatError(a[1], 'comma-separated non-empty event ids');
  }
  if (argc === 2) {
    const time = ids === undefined ? -1 : timeOfIdBytes(buf, a[1], e[1]);
    if (time < 0)
      throw new RecordFormatError(a[1], 'a UUID carrying the time in ms (an @env record without a time)');
    return { time, ids, versions: undefined, metadata: undefined };
  }
  const time = smallInteger(buf, a[2], e[2]);
  if (time === undefined || time < 0)
    throw new RecordFormatError(a[2], 'the envelope time in ms (a non-negative integer)');
  let versions: number[] | undefined;
  if (argc >= 4 && e[3] > a[3]) {
    const parts = buf.toString('latin1', a[3], e[3]).split(',');
    versions = new Array(parts.length);
    for (let i = 0; i < parts.length; i++) {
      if (!/^[1-9][0-9]{0,14}$/.test(parts[i]))
        throw new RecordFormatError(a[3], 'comma-separated event versions (integers ≥ 1)');
      versions[i] = Number(parts[i]);
    }
  }
  let metadata: EventMetadata | undefined;
  if (argc === 5 && withMetadata) {
    const m = parseJson(buf, a[4], e[4], 'the envelope metadata');
    if (m === null || typeof m !== 'object' || Array.isArray(m))
      throw new RecordFormatError(a[4], 'the envelope metadata as a JSON object');
    metadata = m as EventMetadata;
  }
  return { time, ids, versions, metadata };
}

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
    encodeJsonValue(enc, data.value);
  } else if (type === 'DEL') {
    const keys = (event.data as { keys: readonly string[] }).keys;
    enc.arrayHeader(1 + keys.length);
    enc.raw(DEL_NAME);
    for (let i = 0; i < keys.length; i++) enc.bulk(keys[i]);
  } else if (type === 'FLUSHALL') {
    enc.raw(FLUSHALL_RECORD);
  } else {
    enc.raw(EVENT_PREFIX);
    enc.bulkRepeated(type);
    enc.bulkJson(event.data);
  }
}

/**
 * A SET's value as its JSON argument. A non-negative safe integer (counters, the key-value
 * benchmark's values) is written as digits, which is what JSON.stringify gives for it, without
 * making the string.
 */
function encodeJsonValue(enc: RespEncoder, value: JsonValue): void {
  if (typeof value === 'number' && value >= 0 && Number.isSafeInteger(value)) enc.bulkInteger(value);
  else enc.bulkJson(value);
}

/**
 * Encodes a group as its records and its `#CRC` line. `tsSeconds` ≥ 0 writes a `#TS:` annotation
 * first. If encoding throws, the encoder is cut back to where the group started: never half a group.
 */
export function encodeGroup(enc: RespEncoder, group: AofGroup, tsSeconds: number): void {
  const start = enc.length;
  try {
    if (tsSeconds >= 0) enc.annotation(`TS:${tsSeconds}`);
    if (hasEnvelope(group)) encodeEnvelope(enc, group);
    const events = group.events;
    const consumer = group.consumer;
    if (events.length === 1 && consumer === undefined) {
      encodeEvent(enc, events[0]);
    } else {
      enc.raw(MULTI_RECORD);
      for (let i = 0; i < events.length; i++) encodeEvent(enc, events[i]);
      if (consumer !== undefined) {
        enc.raw(POS_PREFIX);
        enc.bulk(consumer.name);
        enc.bulk(String(consumer.position));
        enc.bulk(String(group.consumerEpoch ?? 0));
      }
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
  encodeJsonValue(enc, value);
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
export const CMD_ENVELOPE = 3;
export const CMD_POSITION = 4;

/** Classifies the command in the scanner as MULTI, EXEC, an envelope, a position or an event. */
export function commandKind(buf: Buffer, sc: RespScanner): number {
  if (sc.argc === 1) {
    const s = sc.argStart[0];
    const e = sc.argEnd[0];
    if (bytesEqual(buf, s, e, W_MULTI)) return CMD_MULTI;
    if (bytesEqual(buf, s, e, W_EXEC)) return CMD_EXEC;
  } else if (isEnvelopeRecord(buf, sc)) {
    return CMD_ENVELOPE;
  } else if (isPositionRecord(buf, sc)) {
    return CMD_POSITION;
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

/**
 * True when the command in the scanner is a user event record of a well-formed shape (`*2`, a
 * non-empty type that is none of the built-in names): {@link decodeEvent} would decode its data
 * as JSON and nothing else.
 */
export function isUserEventRecord(buf: Buffer, sc: RespScanner): boolean {
  if (sc.argc !== 2) return false;
  const s0 = sc.argStart[0];
  const e0 = sc.argEnd[0];
  return (
    e0 > s0 &&
    !bytesEqual(buf, s0, e0, W_SET) &&
    !bytesEqual(buf, s0, e0, W_DEL) &&
    !bytesEqual(buf, s0, e0, W_FLUSHALL)
  );
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
