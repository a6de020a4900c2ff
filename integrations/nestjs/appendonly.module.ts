import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { Type } from '../../src/index';
import { AppendonlyService } from './appendonly.service';
import {
  APPENDONLY_CLASSES,
  APPENDONLY_OPTIONS,
  type AppendonlyClasses,
  type AppendonlyModuleAsyncOptions,
  type AppendonlyModuleOptions,
  type AppendonlyModuleSyncOptions,
} from './options';

/**
 * appendonly in a Nest application: one app per application, opened on module init and closed
 * on application shutdown, exposed as {@link AppendonlyService} to every module (the module is
 * global). Handlers, projections and consumers are ordinary Nest providers, built by Nest's
 * container with its injection: list them here, or provide them in any module.
 *
 * ```ts
 * @Module({ imports: [AppendonlyModule.forRoot({ store: new AofStore({ dir: './data' }), handlers: [DepositHandler] })] })
 * class AppModule {}
 * ```
 */
@Module({})
export class AppendonlyModule {
  /** The module with options known when the application is defined. */
  static forRoot(options: AppendonlyModuleSyncOptions): DynamicModule {
    const { handlers, projections, consumers, imports, ...appOptions } = options;
    return AppendonlyModule.build(
      { handlers, projections, consumers, imports },
      { provide: APPENDONLY_OPTIONS, useValue: appOptions satisfies AppendonlyModuleOptions },
    );
  }

  /** The module with options built by a factory that Nest injects (configuration, secrets). */
  static forRootAsync(options: AppendonlyModuleAsyncOptions): DynamicModule {
    const { handlers, projections, consumers, imports, useFactory, inject } = options;
    return AppendonlyModule.build(
      { handlers, projections, consumers, imports },
      {
        provide: APPENDONLY_OPTIONS,
        useFactory: useFactory as (...deps: unknown[]) => Promise<AppendonlyModuleOptions>,
        inject: [...(inject ?? [])],
      },
    );
  }

  private static build(classes: AppendonlyClasses, options: Provider): DynamicModule {
    const listed: Type[] = [
      ...new Set([...(classes.handlers ?? []), ...(classes.projections ?? []), ...(classes.consumers ?? [])]),
    ];
    return {
      module: AppendonlyModule,
      global: true,
      imports: [DiscoveryModule, ...(classes.imports ?? [])],
      providers: [options, { provide: APPENDONLY_CLASSES, useValue: listed }, ...listed, AppendonlyService],
      exports: [AppendonlyService],
    };
  }
}
