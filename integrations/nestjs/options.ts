import type { InjectionToken, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import type { CreateAppOptions, EventStore, Type } from '../../src/index';

/**
 * What `AppendonlyModule` builds its app from: `createApp`'s options, less the class lists (the
 * module's own, see {@link AppendonlyClasses}) and the containers (Nest's is used).
 */
export interface AppendonlyModuleOptions
  extends Omit<
    CreateAppOptions,
    'handlers' | 'projections' | 'consumers' | 'container' | 'resolve' | 'store'
  > {
  /** The store, opened and replayed on module init, closed on application shutdown. */
  readonly store: EventStore;
}

/**
 * Classes the module adds as its own providers, so that Nest builds them (and injects their
 * services: list the modules those come from in `imports`). Decorated classes provided by any
 * other module are found as well and need not be listed.
 */
export interface AppendonlyClasses {
  /** `@CommandHandler` and `@QueryHandler` classes. */
  readonly handlers?: readonly Type[];
  /** `@Projection` classes. */
  readonly projections?: readonly Type[];
  /** `@Consumer` classes, subscribed once the app is ready. */
  readonly consumers?: readonly Type[];
  /** Modules whose providers the listed classes inject. */
  readonly imports?: ModuleMetadata['imports'];
}

/** `AppendonlyModule.forRoot`'s argument. */
export type AppendonlyModuleSyncOptions = AppendonlyModuleOptions & AppendonlyClasses;

/** `AppendonlyModule.forRootAsync`'s argument: the options come from a factory Nest injects. */
export interface AppendonlyModuleAsyncOptions extends AppendonlyClasses {
  /** Builds the options (the store, usually from configuration); may be async. */
  readonly useFactory: (...deps: never[]) => AppendonlyModuleOptions | Promise<AppendonlyModuleOptions>;
  /** The providers handed to `useFactory`, in order. */
  readonly inject?: readonly (InjectionToken | OptionalFactoryDependency)[];
}

/** @internal The injection token of the resolved options. */
export const APPENDONLY_OPTIONS = Symbol.for('appendonly:nestjs:options');
/** @internal The injection token of the classes listed to the module. */
export const APPENDONLY_CLASSES = Symbol.for('appendonly:nestjs:classes');
