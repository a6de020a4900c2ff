import * as path from 'node:path';
import type { Type } from '../src/index';
import { usage } from './errors';

/*
 * The state of a log holding user events depends on the user's projections, which the tool
 * cannot guess: `--app <module>` names a module exporting `{ handlers, projections }` (the same
 * lists given to createApp), and optionally `projectionsVersion`. Without it, only the built-in SET/DEL/FLUSHALL are understood, and
 * commands that need the state refuse a log with other types, naming them.
 */

/** The classes given to createApp, and the projections version when the module exports one. */
export interface AppClasses {
  readonly handlers: readonly Type[];
  readonly projections: readonly Type[];
  /** `projectionsVersion`, as given to createApp (checked there). */
  readonly projectionsVersion?: string | number;
}

/** Built-in event types, which the state applies with no projection. */
export const BUILTIN_TYPES: ReadonlySet<string> = new Set(['SET', 'DEL', 'FLUSHALL']);

/** Loads `--app`; a missing module or one without the lists is a usage error. */
export function loadAppModule(spec: string | undefined): AppClasses {
  if (spec === undefined) return { handlers: [], projections: [] };
  let mod: Record<string, unknown>;
  try {
    mod = require(path.resolve(spec)) as Record<string, unknown>;
  } catch (err) {
    throw usage(`--app ${spec}: cannot load it: ${(err as Error).message.split('\n')[0]}`);
  }
  const source = (mod.default && typeof mod.default === 'object' ? mod.default : mod) as Record<
    string,
    unknown
  >;
  const handlers = source.handlers ?? [];
  const projections = source.projections;
  if (!Array.isArray(projections) || !Array.isArray(handlers)) {
    throw usage(
      `--app ${spec}: must export { handlers, projections } (arrays of classes, as given to createApp)`,
    );
  }
  const version = source.projectionsVersion;
  if (version !== undefined && typeof version !== 'string' && typeof version !== 'number') {
    throw usage(`--app ${spec}: projectionsVersion must be a string or a number, as given to createApp`);
  }
  return {
    handlers: handlers as Type[],
    projections: projections as Type[],
    ...(version === undefined ? {} : { projectionsVersion: version }),
  };
}

/** The event types the projections listen to (from their `@On` decorations). */
export function projectedTypes(app: AppClasses): Set<string> {
  const out = new Set<string>();
  // The decorators' registry key (a global symbol, so it is shared with the user's copy of appendonly).
  const ON_EVENTS = Symbol.for('appendonly:on-events');
  for (const cls of app.projections) {
    const bindings = (Reflect.getMetadata(ON_EVENTS, cls) as { type: string }[] | undefined) ?? [];
    for (const b of bindings) out.add(b.type);
  }
  return out;
}

/** The types in `seen` that neither the state nor a projection handles. */
export function unknownTypes(seen: Iterable<string>, app: AppClasses): string[] {
  const known = projectedTypes(app);
  return [...seen].filter((t) => !BUILTIN_TYPES.has(t) && !known.has(t)).sort();
}
