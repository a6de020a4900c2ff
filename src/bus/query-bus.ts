import type { Type } from '../decorators/metadata';
import type { IQueryHandler } from '../decorators/query-handler';
import type { ReadonlyKeyValueState } from '../state/readonly-state';
import { DuplicateHandlerError, UnknownQueryError } from '../errors';

/** Routes queries to their handlers. Queries read the state only: nothing here reaches the store. */
export class QueryBus {
  private readonly handlers = new Map<Type, IQueryHandler>();

  constructor(private readonly state: ReadonlyKeyValueState) {}

  /** Registers the handler of `query`; a second one for the same class is an error. */
  register(query: Type, handler: IQueryHandler, handlerName: string): void {
    const existing = this.handlers.get(query);
    if (existing !== undefined) {
      throw new DuplicateHandlerError(
        `two handlers for query ${query.name}: ${existing.constructor.name} and ${handlerName}`,
      );
    }
    this.handlers.set(query, handler);
  }

  /** Runs the query's handler against the current state. */
  async execute<TResult>(query: object): Promise<TResult> {
    const handler = this.handlers.get(query.constructor as Type);
    if (handler === undefined) {
      throw new UnknownQueryError(
        `no @QueryHandler is registered for query ${query.constructor?.name ?? typeof query}`,
      );
    }
    return (await handler.execute(query, this.state)) as TResult;
  }
}
