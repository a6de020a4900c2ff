import 'reflect-metadata';
import { Inject, Injectable, Module, Scope } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  CommandHandler,
  ConfigError,
  defineEvent,
  MemoryStore,
  On,
  Projection,
  type ProjectionState,
  QueryHandler,
  type ReadonlyKeyValueState,
  silentLogger,
} from 'appendonly';
import { AppendonlyModule, AppendonlyService } from 'appendonly/nestjs';

class Pay {
  constructor(readonly amount: number) {}
}
class Total {}
const Paid = defineEvent<{ amount: number; fee: number }>('NestPaid');

/** A Nest service from a module of its own, injected into a handler. */
@Injectable()
class Fees {
  readonly rate = 0.1;
}
@Module({ providers: [Fees], exports: [Fees] })
class FeesModule {}

@CommandHandler(Pay)
class PayHandler {
  constructor(private readonly fees: Fees) {}
  execute(cmd: Pay) {
    return Paid({ amount: cmd.amount, fee: cmd.amount * this.fees.rate });
  }
}

@QueryHandler(Total)
class TotalHandler {
  execute(_q: Total, state: ReadonlyKeyValueState) {
    return state.get('total') ?? 0;
  }
}

/** Provided by a feature module, not listed to AppendonlyModule: found by discovery. */
@Projection()
class Totals {
  @On(Paid)
  paid(e: typeof Paid.Event, kv: ProjectionState) {
    kv.set('total', ((kv.get('total') as number | undefined) ?? 0) + e.data.amount + e.data.fee);
  }
}
@Module({ providers: [Totals, TotalHandler] })
class LedgerModule {}

async function context(root: object) {
  const ctx = await NestFactory.createApplicationContext(root as never, {
    logger: false,
    abortOnError: false,
  });
  return { ctx, service: ctx.get(AppendonlyService) };
}

describe('AppendonlyModule', () => {
  it('forRoot: listed handlers get Nest services; projections provided elsewhere are found', async () => {
    // given: a handler listed with its dependency's module, a projection in a feature module
    @Module({
      imports: [
        AppendonlyModule.forRoot({
          store: new MemoryStore(),
          logger: silentLogger,
          handlers: [PayHandler],
          imports: [FeesModule],
        }),
        LedgerModule,
      ],
    })
    class Root {}
    const { ctx, service } = await context(Root);
    // when: a command runs through the service
    const result = await service.execute(new Pay(100));
    // then: the handler used the injected Fees, the discovered projection applied it
    expect(result.events).toEqual([Paid({ amount: 100, fee: 10 })]);
    expect(await service.query(new Total())).toBe(110);
    expect(service.state.get('total')).toBe(110);
    await ctx.close();
  });

  it('forRootAsync: the options come from a factory Nest injects', async () => {
    // given: the store as a provider of a configuration module
    const STORE = Symbol('STORE');
    @Module({ providers: [{ provide: STORE, useValue: new MemoryStore() }], exports: [STORE] })
    class StoreModule {}
    @Module({
      imports: [
        AppendonlyModule.forRootAsync({
          imports: [StoreModule, FeesModule],
          inject: [STORE],
          useFactory: async (store: MemoryStore) => ({ store, logger: silentLogger }),
          handlers: [PayHandler, TotalHandler],
          projections: [Totals],
        }),
      ],
    })
    class Root {}
    // when: the application starts and takes a command
    const { ctx, service } = await context(Root);
    await service.execute(new Pay(20));
    // then: the app runs on the factory's store
    expect(service.stats().lastSeq).toBe(1);
    expect(await ctx.get<MemoryStore>(STORE).read?.(0, 10)).toHaveLength(1);
    expect(await service.query(new Total())).toBe(22);
    await ctx.close();
  });

  it('a class provided by two modules is used once', async () => {
    @Module({
      imports: [
        AppendonlyModule.forRoot({
          store: new MemoryStore(),
          logger: silentLogger,
          handlers: [PayHandler, TotalHandler],
          projections: [Totals],
          imports: [FeesModule],
        }),
        LedgerModule,
      ],
    })
    class Root {}
    const { ctx, service } = await context(Root);
    await service.execute(new Pay(10));
    expect(await service.query(new Total())).toBe(11);
    await ctx.close();
  });

  it('refuses a request-scoped handler, naming it', async () => {
    @Injectable({ scope: Scope.REQUEST })
    @QueryHandler(Total)
    class ScopedTotal {
      constructor(@Inject(Fees) readonly fees: Fees) {}
      execute() {
        return 0;
      }
    }
    @Module({
      imports: [AppendonlyModule.forRoot({ store: new MemoryStore(), logger: silentLogger }), FeesModule],
      providers: [ScopedTotal],
    })
    class Root {}
    await expect(context(Root)).rejects.toThrow(ConfigError);
    await expect(context(Root)).rejects.toThrow(/ScopedTotal is request-scoped or transient/);
  });

  it('closes the store on application shutdown', async () => {
    const store = new MemoryStore();
    @Module({
      imports: [
        AppendonlyModule.forRoot({
          store,
          logger: silentLogger,
          handlers: [PayHandler],
          imports: [FeesModule],
        }),
      ],
    })
    class Root {}
    const { ctx, service } = await context(Root);
    await service.execute(new Pay(1));
    await ctx.close();
    await expect(service.execute(new Pay(1))).rejects.toThrow(/closed/);
  });
});
