/**
 * Where point-in-time recovery cuts a log: after the command holding sequence number `seq`, or
 * before the first command logged later than unix second `ts`. Every store's truncate keeps
 * whole commands only, so a `seq` inside a command is refused, never rounded.
 */
export type LogPoint = { readonly seq: number } | { readonly ts: number };
