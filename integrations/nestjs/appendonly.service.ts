import { Inject, Injectable, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, ModuleRef } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { CONSUMER, decoratedClasses, PROJECTION } from '../../src/decorators/metadata';
import {
  type App,
  type AppliedEvent,
  type AppStats,
  AppClosedError,
  type CommandResult,
  type ConsumerHandler,
  type CompactionResult,
  ConfigError,
  createApp,
  type ExecuteOptions,
  type ReadonlyKeyValueState,
  type SubscribeOptions,
  type Subscription,
  type Type,
} from '../../src/index';
import { APPENDONLY_CLASSES, APPENDONLY_OPTIONS, type AppendonlyModuleOptions } from './options';

/**
 * The app, for the rest of a Nest application: inject it to execute commands, run queries and
 * read the state. It opens the store and replays the log in `onModuleInit`, with the decorated
 * handlers, projections and consumers that Nest built (wherever they are provided), and closes
 * the store (what is pending written and fsynced) in `onApplicationShutdown`, which Nest calls
 * after the HTTP server stopped listening, so that no request can still be executing a command.
 * Call `enableShutdownHooks()` so that SIGTERM runs it.
 */
@Injectable()
export class AppendonlyService implements OnModuleInit, OnApplicationShutdown {
  private current: App | undefined;

  constructor(
    @Inject(APPENDONLY_OPTIONS) private readonly options: AppendonlyModuleOptions,
    @Inject(APPENDONLY_CLASSES) private readonly listed: readonly Type[],
    // @Inject by class: the parameter types alone are erased when the imports are type-only.
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
    @Inject(ModuleRef) private readonly moduleRef: ModuleRef,
  ) {}

  /** @internal Nest's hook: builds the app (opens the store, replays, subscribes the consumers). */
  async onModuleInit(): Promise<void> {
    const instances = this.instances();
    const classes = [...instances.keys()];
    const consumers = classes.filter((c) => Reflect.getMetadata(CONSUMER, c) !== undefined);
    const projections = classes.filter((c) => Reflect.getMetadata(PROJECTION, c) === true);
    const handlers = classes.filter((c) => !consumers.includes(c) && !projections.includes(c));
    this.current = await createApp({
      ...this.options,
      handlers,
      projections,
      consumers,
      resolve: (cls) => instances.get(cls) as object,
    });
  }

  /** @internal Nest's hook: closes the app and its store. */
  async onApplicationShutdown(): Promise<void> {
    const app = this.current;
    if (app !== undefined) await app.close();
  }

  /** The app itself, for what this service does not forward. Throws before module init. */
  get app(): App {
    if (this.current === undefined)
      throw new AppClosedError('AppendonlyService: the app is not open yet (it opens in onModuleInit)');
    return this.current;
  }

  /** See `App.execute`. */
  execute(command: object, options?: ExecuteOptions): Promise<CommandResult> {
    return this.app.execute(command, options);
  }

  /** See `App.query`. */
  query<TResult = unknown>(query: object): Promise<TResult> {
    return this.app.query<TResult>(query);
  }

  /** The state, read-only. */
  get state(): ReadonlyKeyValueState {
    return this.app.state;
  }

  /** See `App.events$`. */
  get events$(): Observable<AppliedEvent> {
    return this.app.events$;
  }

  /** See `App.subscribe`. */
  subscribe(name: string, handler: ConsumerHandler, options?: SubscribeOptions): Promise<Subscription> {
    return this.app.subscribe(name, handler, options);
  }

  /** See `App.sync`. */
  sync(): Promise<void> {
    return this.app.sync();
  }

  /** See `App.compact`. */
  compact(): Promise<CompactionResult> {
    return this.app.compact();
  }

  /** See `App.stats`. */
  stats(): AppStats {
    return this.app.stats();
  }

  /**
   * Every decorated class Nest built, by class: those provided by any module (found as
   * @nestjs/cqrs finds its handlers), then those listed to the module. One instance per class:
   * a class provided by two modules is used once.
   */
  private instances(): Map<Type, object> {
    const found = new Map<Type, object>();
    for (const wrapper of this.discovery.getProviders()) {
      const cls = wrapper.metatype as Type | null | undefined;
      if (cls === null || cls === undefined || !decoratedClasses.has(cls) || found.has(cls)) continue;
      if (!wrapper.isDependencyTreeStatic() || wrapper.instance === undefined)
        throw new ConfigError(
          `${cls.name} is request-scoped or transient: appendonly's handlers, projections and consumers must be singletons`,
        );
      found.set(cls, wrapper.instance as object);
    }
    for (const cls of this.listed)
      if (!found.has(cls)) found.set(cls, this.moduleRef.get(cls, { strict: false }) as object);
    return found;
  }
}
