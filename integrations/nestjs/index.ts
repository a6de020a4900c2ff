/**
 * appendonly in NestJS: `AppendonlyModule.forRoot` / `forRootAsync`, and `AppendonlyService` to
 * execute commands, run queries and read the state. Needs `@nestjs/common` and `@nestjs/core`
 * (optional peers of appendonly).
 *
 * @packageDocumentation
 */
import './peers';

export { AppendonlyModule } from './appendonly.module';
export { AppendonlyService } from './appendonly.service';
export type {
  AppendonlyClasses,
  AppendonlyModuleAsyncOptions,
  AppendonlyModuleOptions,
  AppendonlyModuleSyncOptions,
} from './options';
