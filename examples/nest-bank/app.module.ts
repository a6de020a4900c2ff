import { type DynamicModule, type INestApplication, Module } from '@nestjs/common';
import { APP_FILTER, NestFactory } from '@nestjs/core';
import type { FsyncPolicy } from 'appendonly';
import { AppendonlyModule } from 'appendonly/nestjs';
import { bank } from '../bank/domain';
import { makeStore } from '../bank/store';
import { AuditLog, AuditTrail, DATA_DIR } from './audit-log';
import { BankController, CommandRejectedFilter } from './bank.controller';

/** Where the example keeps its log and its audit trail, and how it syncs the log. */
export interface NestBankConfig {
  readonly dataDir: string;
  readonly store?: 'aof' | 'sqlite';
  readonly appendfsync?: FsyncPolicy;
}

/** The data folder as a provider of its own, so that the store's factory and AuditLog share it. */
@Module({})
class ConfigModule {
  static of(config: NestBankConfig): DynamicModule {
    return {
      module: ConfigModule,
      providers: [{ provide: DATA_DIR, useValue: config.dataDir }, AuditLog],
      exports: [DATA_DIR, AuditLog],
    };
  }
}

/** The bank's Nest module: the appendonly module with the bank's handlers, and its HTTP routes. */
@Module({})
export class AppModule {
  static of(config: NestBankConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.of(config),
        AppendonlyModule.forRootAsync({
          imports: [ConfigModule.of(config)],
          inject: [DATA_DIR],
          useFactory: (dir: string) => ({
            ...bank,
            store: makeStore(config.store ?? 'aof', dir, config.appendfsync ?? 'everysec'),
          }),
          handlers: bank.handlers,
          projections: bank.projections,
          consumers: [AuditTrail],
        }),
      ],
      controllers: [BankController],
      providers: [{ provide: APP_FILTER, useClass: CommandRejectedFilter }],
    };
  }
}

/**
 * The Nest application, its store opened and replayed, not yet listening. `enableShutdownHooks`
 * makes SIGTERM close the HTTP server first, then the store (flushed and fsynced).
 */
export async function createNestBank(config: NestBankConfig): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.of(config), { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  return app;
}
