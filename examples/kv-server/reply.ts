/**
 * The reply side of RESP2. Replies are built as strings: a connection joins the replies of one
 * read into a single string and hands it to one `socket.write`, which encodes it as UTF-8 — the
 * encoding arguments were decoded with, so what a client stored is what it reads back.
 */

/** `+OK`. */
export const OK = '+OK\r\n';
/** The null bulk string. */
export const NIL = '$-1\r\n';
/** An empty array. */
export const EMPTY_ARRAY = '*0\r\n';

/** A status reply: `+text`. */
export function simple(text: string): string {
  return `+${text}\r\n`;
}

/**
 * An error reply: `-CODE message`. `message` starts with the code (`ERR …`, `WRONGTYPE …`); line
 * breaks would end the reply early, so they become spaces, as Redis does.
 */
export function error(message: string): string {
  return `-${message.replace(/[\r\n]+/g, ' ')}\r\n`;
}

/** An integer reply. */
export function integer(n: number | bigint): string {
  return `:${n}\r\n`;
}

/** A bulk string reply, or the null bulk string for `null`. */
export function bulk(value: string | null): string {
  if (value === null) return NIL;
  return `$${Buffer.byteLength(value, 'utf8')}\r\n${value}\r\n`;
}

/** An array of already encoded replies. */
export function array(items: readonly string[]): string {
  return `*${items.length}\r\n${items.join('')}`;
}

/** An array of bulk strings (null elements are null bulk strings). */
export function bulkArray(values: readonly (string | null)[]): string {
  let out = `*${values.length}\r\n`;
  for (const v of values) out += bulk(v);
  return out;
}

/** A bulk reply of raw bytes (ECHO of bytes that are not UTF-8). */
export function bulkBytes(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n')]);
}
