import { Container } from 'inversify';
import { CommandBus } from '../bus/command-bus';
import { QueryBus } from '../bus/query-bus';
import type { ICommandHandler } from '../decorators/command-handler';
import type { ConsumerBinding } from '../decorators/consumer';
import type { ConsumerHandler } from '../consumers/types';
import type { AppliedEvent } from '../events/event';
import {
  COMMAND_HANDLER,
  CONSUMER,
  decoratedClasses,
  ON_EVENTS,
  type OnBinding,
  PROJECTION,
  QUERY_HANDLER,
  type Type,
} from '../decorators/metadata';
import type { IQueryHandler } from '../decorators/query-handler';
import { KeyValueState, readonlyView } from '../state/key-value-state';
import { type Clock, systemClock } from '../runtime/clock';
import { ConfigError } from '../errors';
import type { EventStore } from '../store/event-store';
import { consoleLogger, type Logger } from '../runtime/logger';
import type { Telemetry } from '../telemetry/telemetry';
import { TOKENS } from '../tokens';
import { App } from './app';
import { projectionsVersionText } from './projections-version';
import { Projector } from './projector';

/**
 * Gives the instance of a decorated class (see `CreateAppOptions.resolve`): a container's `get`,
 * called once per class while the app is built.
 */
export type ClassResolver = (cls: Type) => object;

/** The options of {@link createApp}. */
export interface CreateAppOptions {
  /** `@CommandHandler` and `@QueryHandler` classes. */
  readonly handlers?: readonly Type[];
  /** `@Projection` classes. */
  readonly projections?: readonly Type[];
  /**
   * `@Consumer` classes: subscribed (see `app.subscribe`) once the app is ready; `createApp`
   * resolves after each has opened (its position loaded or created), not after it caught up.
   */
  readonly consumers?: readonly Type[];
  /** The store; when absent, the one bound to `TOKENS.EventStore` in `container`. */
  readonly store?: EventStore;
  /**
   * An existing inversify container with your services. When no lists of classes are given, every
   * decorated handler and projection bound in it is used. The app binds the `TOKENS` it needs
   * unless they are bound already.
   */
  readonly container?: Container;
  /**
   * Where the handler, projection and consumer classes are instantiated. By default the
   * inversify `container` (each class bound to itself as a singleton unless it is bound
   * already). Give another container's lookup to let it build them with its own injection, as
   * `appendonly/nestjs` does with Nest's: the app then asks `resolve` for each class, once, and
   * never binds them in inversify.
   */
  readonly resolve?: ClassResolver;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /**
   * What replay does with an event type this app does not define (written by other code):
   * `error` (default) refuses to start with `UnknownEventTypeError` naming the type and where it
   * is; `skip` loads without those events and logs how many were skipped.
   */
  readonly unknownEventTypes?: 'error' | 'skip';
  /**
   * The version of this app's projections: bump it whenever a projection's logic changes (what
   * an `@On` handler writes for an event), so that a state computed by other projections is
   * never loaded as this app's. A non-negative integer or a short text (1 to 64 letters, digits
   * and `. _ : + @ / -`), compared as text: `2` and `'2'` are one version.
   *
   * Every snapshot a compaction writes records it. At start (and when a follower of a shared log
   * reloads), a snapshot of another version is not loaded: the state is rebuilt from the events,
   * with a warning naming both versions, or, where compaction dropped those events, the app
   * refuses to start with `ProjectionsVersionError` naming both. Absent (the default), the app is
   * unversioned: it loads any snapshot, as before, and writes unversioned ones; a versioned app
   * loads an unversioned snapshot too (adopting the option never makes a log unloadable).
   */
  readonly projectionsVersion?: string | number;
  /**
   * An observer of the app's work: `openTelemetry()` from `appendonly/opentelemetry` (spans per
   * command, replay and compaction; metrics), or your own {@link Telemetry}. Absent, nothing is
   * observed and nothing is paid.
   */
  readonly telemetry?: Telemetry;
}

/**
 * Builds an app: resolves handlers and projections from the container, opens the store and
 * replays its log through the projections. Resolves when the app is ready; rejects (with the
 * store closed again) when the log cannot be loaded, so a process never starts on a half-loaded state.
 */
export async function createApp(options: CreateAppOptions): Promise<App> {
  const container = options.container ?? new Container();
  const logger = options.logger ?? bound<Logger>(container, TOKENS.Logger) ?? consoleLogger;
  const clock = options.clock ?? bound<Clock>(container, TOKENS.Clock) ?? systemClock;
  const store = options.store ?? bound<EventStore>(container, TOKENS.EventStore);
  if (store === undefined) {
    throw new ConfigError(
      'createApp needs a store: pass { store } or bind one to TOKENS.EventStore in the container',
    );
  }
  const state = new KeyValueState();
  const view = readonlyView(state);
  bindConstant(container, TOKENS.EventStore, store);
  bindConstant(container, TOKENS.Logger, logger);
  bindConstant(container, TOKENS.Clock, clock);
  bindConstant(container, TOKENS.State, view);

  const commands = new CommandBus();
  const queries = new QueryBus(view);
  const projector = new Projector(state);
  const consumers: { binding: ConsumerBinding; handler: ConsumerHandler }[] = [];
  const resolve: ClassResolver =
    options.resolve ??
    ((cls) => {
      if (!container.isBound(cls)) container.bind(cls).toSelf().inSingletonScope();
      return container.get<object>(cls);
    });
  for (const cls of classesToUse(options, container)) {
    const command: Type | undefined = Reflect.getMetadata(COMMAND_HANDLER, cls);
    const query: Type | undefined = Reflect.getMetadata(QUERY_HANDLER, cls);
    const isProjection = Reflect.getMetadata(PROJECTION, cls) === true;
    const consumer: ConsumerBinding | undefined = Reflect.getMetadata(CONSUMER, cls);
    if (command === undefined && query === undefined && !isProjection && consumer === undefined) {
      throw new ConfigError(
        `${cls.name} is not decorated with @CommandHandler, @QueryHandler, @Projection or @Consumer`,
      );
    }
    const instance = resolve(cls);
    if (typeof instance !== 'object' || instance === null)
      throw new ConfigError(`resolving ${cls.name} gave ${String(instance)}, not an instance`);
    if (consumer !== undefined) {
      const bindings = (Reflect.getMetadata(ON_EVENTS, cls) as OnBinding[] | undefined) ?? [];
      consumers.push({ binding: consumer, handler: consumerHandler(instance, bindings) });
    }
    if (command !== undefined) commands.register(command, instance as ICommandHandler, cls.name);
    if (query !== undefined) queries.register(query, instance as IQueryHandler, cls.name);
    if (isProjection)
      projector.add(instance, (Reflect.getMetadata(ON_EVENTS, cls) as OnBinding[] | undefined) ?? []);
  }

  if (
    options.unknownEventTypes !== undefined &&
    options.unknownEventTypes !== 'error' &&
    options.unknownEventTypes !== 'skip'
  ) {
    throw new ConfigError(
      `unknownEventTypes must be 'error' or 'skip'; got ${JSON.stringify(options.unknownEventTypes)}`,
    );
  }
  const projectionsVersion = projectionsVersionText(options.projectionsVersion);
  const app = new App(
    store,
    state,
    commands,
    queries,
    projector,
    clock,
    logger,
    options.unknownEventTypes === 'skip',
    projectionsVersion,
    options.telemetry ?? null,
  );
  await app.start();
  try {
    for (const { binding, handler } of consumers) await app.subscribe(binding.name, handler, binding.options);
  } catch (err) {
    await app.close().catch(() => {});
    throw err;
  }
  return app;
}

/** A `@Consumer`'s `@On` methods as one handler: by event type; other types are passed over. */
function consumerHandler(instance: object, bindings: readonly OnBinding[]): ConsumerHandler {
  const byType = new Map<string, ((event: unknown, meta: { seq: number; time: number }) => unknown)[]>();
  const methods = instance as Record<string | symbol, unknown>;
  for (const { type, method } of bindings) {
    const fn = methods[method];
    if (typeof fn !== 'function') continue;
    const list = byType.get(type) ?? [];
    list.push((fn as (e: unknown, m: unknown) => unknown).bind(instance));
    byType.set(type, list);
  }
  return async (applied: AppliedEvent) => {
    const list = byType.get(applied.event.type);
    if (list === undefined) return;
    // Every method's reaction, in the order of the methods: one reaction, one unit in the log.
    const commands: object[] = [];
    for (const fn of list) {
      const out = await fn(applied.event, { seq: applied.seq, time: applied.time });
      if (Array.isArray(out)) commands.push(...(out as object[]));
      else if (out !== null && typeof out === 'object') commands.push(out);
    }
    return commands.length > 0 ? commands : undefined;
  };
}

function classesToUse(options: CreateAppOptions, container: Container): Type[] {
  if (
    options.handlers !== undefined ||
    options.projections !== undefined ||
    options.consumers !== undefined
  ) {
    return [
      ...new Set([...(options.handlers ?? []), ...(options.projections ?? []), ...(options.consumers ?? [])]),
    ];
  }
  if (options.container === undefined) return [];
  return [...decoratedClasses].filter((cls) => container.isBound(cls));
}

function bound<T>(container: Container, token: symbol): T | undefined {
  return container.isBound(token) ? container.get<T>(token) : undefined;
}

function bindConstant(container: Container, token: symbol, value: unknown): void {
  if (container.isBound(token)) {
    if (container.get(token) === value) return;
    container.unbindSync(token);
  }
  container.bind(token).toConstantValue(value);
}
