import { loadDriver } from '../../adapters/common/drivers';

/*
 * @opentelemetry/api is an optional peer of appendonly, needed by this entry point only (no SDK:
 * the application registers its own). Loaded here, before the files that import it, so that a
 * missing one is one line naming the command to run.
 */
loadDriver('@opentelemetry/api', (id) => require(id));
