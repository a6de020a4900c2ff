import type { ReadonlyKeyValueState } from '../state/readonly-state';
import { decoratedClasses, QUERY_HANDLER, type Type } from './metadata';
import { injectableOnce } from './injectable-once';

/** The interface of a class decorated with {@link QueryHandler}. Queries read the state and are never logged. */
export interface IQueryHandler<TQuery extends object = object, TResult = unknown> {
  execute(query: TQuery, state: ReadonlyKeyValueState): TResult | Promise<TResult>;
}

/** Marks a class as the handler of one query class (made `@injectable()` here). */
export function QueryHandler(query: Type): ClassDecorator {
  return (target) => {
    injectableOnce(target);
    Reflect.defineMetadata(QUERY_HANDLER, query, target);
    decoratedClasses.add(target as unknown as Type);
  };
}
