import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type App, createApp, type JsonValue, type Logger, silentLogger } from 'appendonly';
import { type AofStoreOptions, AofStore } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';

/** A fresh folder under the OS temp dir; `cleanup()` removes it. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-aof-'));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
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

/** The app's state as a plain object. */
export function state(app: App): Record<string, JsonValue> {
  return Object.fromEntries(app.state.entries());
}

/** A logger that keeps what it is told. */
export function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
  };
}

/** The log folder of a store made with `{ dir }` and default names. */
export function logDir(dir: string): string {
  return path.join(dir, 'appendonlydir');
}

/** Reads a file of the log folder. */
export function readLogFile(dir: string, name: string): Buffer {
  return fs.readFileSync(path.join(logDir(dir), name));
}
