import { loadDriver } from '../../adapters/common/drivers';

/*
 * @nestjs/common and @nestjs/core are optional peers of appendonly: only this entry point needs
 * them. Loading them here, before any file that imports them, turns a missing one into one line
 * naming the command to run (MissingDriverError) instead of a stack trace from Node's resolver.
 */
loadDriver('@nestjs/common', (id) => require(id));
loadDriver('@nestjs/core', (id) => require(id));
