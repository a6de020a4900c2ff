import * as fs from 'node:fs';
import * as path from 'node:path';
import { type App, createApp, type EventGroup, KeyValueState, type Logger, silentLogger } from 'appendonly';
import { type AofStoreOptions, AofStore } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';
import { crc32 } from '../../adapters/aof/crc';
import { crcHex } from '../../adapters/aof/record-codec';

import { tempDir as tempDirUnder } from '../support/helpers';

export { recordingLogger, state } from '../support/helpers';

/** A fresh folder under the OS temp dir; `cleanup()` removes it. */
export function tempDir(): { dir: string; cleanup: () => void } {
  return tempDirUnder('aof');
}

/** An app of the conformance fixtures (Put, PutMany, Remove, Count, …) on an AofStore. */
export async function openApp(
  options: AofStoreOptions,
  logger: Logger = silentLogger,
): Promise<{ app: App; store: AofStore }> {
  const store = new AofStore(options);
  const app = await createApp({ ...fixtures.conformanceClasses, store, logger });
  return { app, store };
}

/** The log folder of a store made with `{ dir }` and default names. */
export function logDir(dir: string): string {
  return path.join(dir, 'appendonlydir');
}

/** Reads a file of the log folder. */
export function readLogFile(dir: string, name: string): Buffer {
  return fs.readFileSync(path.join(logDir(dir), name));
}

/** `SET key <raw value bytes>` followed by a `#CRC` line computed over it, as a hand edit would write it. */
export function setWithCrc(key: string, rawValue: string): string {
  const record = `*3\r\n$3\r\nSET\r\n$${Buffer.byteLength(key)}\r\n${key}\r\n$${Buffer.byteLength(rawValue)}\r\n${rawValue}\r\n`;
  const bytes = Buffer.from(record);
  return `${record}#CRC:${crcHex(crc32(bytes, 0, bytes.length))}\r\n`;
}

/** Writes `groups` through an AofStore (`always`), as code that ran before this test did. */
export async function writeLog(dir: string, groups: readonly EventGroup[]): Promise<void> {
  const store = new AofStore({ dir, appendfsync: 'always' });
  const kv = new KeyValueState();
  await store.open({
    snapshots: { takeSnapshot: () => kv.takeSnapshot(0) },
    logger: silentLogger,
    clock: { now: Date.now },
  });
  for (const group of groups) await store.append(group);
  await store.close();
}
