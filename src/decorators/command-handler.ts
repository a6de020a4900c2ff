import type { DomainEvent } from '../events/event';
import type { ReadonlyKeyValueState } from '../state/readonly-state';
import { COMMAND_HANDLER, decoratedClasses, type Type } from './metadata';
import { injectableOnce } from './injectable-once';

/** What a command handler may return: the command's events (none, one, or several), or a promise of them. */
export type HandlerResult =
  | readonly DomainEvent<string, unknown>[]
  | DomainEvent<string, unknown>
  | undefined
  | Promise<readonly DomainEvent<string, unknown>[] | DomainEvent<string, unknown> | undefined>;

/** The interface of a class decorated with {@link CommandHandler}. */
export interface ICommandHandler<TCommand extends object = object> {
  /**
   * Decides: returns the events the command produces, or throws (`CommandRejected`) to refuse it.
   * It must not change anything itself; the events are applied by the framework, atomically.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing produces no events
  execute(command: TCommand, state: ReadonlyKeyValueState): HandlerResult | void;
}

/**
 * Marks a class as the handler of one command class. The class is resolved from the inversify
 * container, so its constructor may inject services (it is made `@injectable()` here; adding `@injectable()` yourself is allowed but not needed).
 */
export function CommandHandler(command: Type): ClassDecorator {
  return (target) => {
    injectableOnce(target);
    Reflect.defineMetadata(COMMAND_HANDLER, command, target);
    decoratedClasses.add(target as unknown as Type);
  };
}
