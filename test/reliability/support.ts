import type { App, JsonValue } from 'appendonly';
import { fixtures } from 'appendonly/testing';

const { Put, PutMany, Remove, Count } = fixtures;

/**
 * Shared pieces of the reliability suites: commands as plain data, so that one list drives the
 * app and the model (a Map) alike, and the small file helpers every suite needs.
 */

/** A command of the conformance fixtures, as data. */
export type Cmd =
  | { kind: 'put'; key: string; value: JsonValue }
  | { kind: 'putMany'; entries: [string, JsonValue][] }
  | { kind: 'remove'; keys: string[] }
  | { kind: 'count'; key: string; by: number };

/** The fixture command object for `cmd`. */
export function toCommand(cmd: Cmd): object {
  switch (cmd.kind) {
    case 'put':
      return new Put(cmd.key, cmd.value);
    case 'putMany':
      return new PutMany(cmd.entries);
    case 'remove':
      return new Remove(cmd.keys);
    case 'count':
      return new Count(cmd.key, cmd.by);
  }
}

/** How many events (sequence numbers) the command logs. */
export function eventCount(cmd: Cmd): number {
  return cmd.kind === 'putMany' ? cmd.entries.length : 1;
}

/** Applies `cmd` to the model as the app's handlers and projections do. */
export function applyToModel(model: Map<string, JsonValue>, cmd: Cmd): void {
  switch (cmd.kind) {
    case 'put':
      model.set(cmd.key, cmd.value);
      break;
    case 'putMany':
      for (const [k, v] of cmd.entries) model.set(k, v);
      break;
    case 'remove':
      for (const k of cmd.keys) model.delete(k);
      break;
    case 'count':
      model.set(cmd.key, ((model.get(cmd.key) as number | undefined) ?? 0) + cmd.by);
      break;
  }
}

/** The model's state after the given commands, as a plain object. */
export function modelOf(cmds: readonly Cmd[]): Record<string, JsonValue> {
  const model = new Map<string, JsonValue>();
  for (const c of cmds) applyToModel(model, c);
  return Object.fromEntries(model);
}

/** The app's state as a plain object. */
export function stateOf(app: App): Record<string, JsonValue> {
  return Object.fromEntries(app.state.entries());
}

export { recordingLogger, tempDir } from '../support/helpers';

/** Settles after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
