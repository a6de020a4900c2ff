import { type Observable, Subject } from 'rxjs';
import type { ICommandHandler } from '../decorators/command-handler';
import type { Type } from '../decorators/metadata';
import { DuplicateHandlerError, UnknownCommandError } from '../errors';

/**
 * The command bus: maps each command class to its one handler. Dispatch is a Map lookup, as in
 * @nestjs/cqrs; `commands$` is a Subject for observers only, fed when someone listens, so the
 * per-command path carries no RxJS machinery. Ordering and acknowledgement are the App's.
 */
export class CommandBus {
  private readonly handlers = new Map<Type, ICommandHandler>();
  private readonly subject = new Subject<object>();

  /** Every command accepted for execution, in dispatch order. */
  readonly commands$: Observable<object> = this.subject.asObservable();

  /** Registers the handler of `command`; a second one for the same class is an error. */
  register(command: Type, handler: ICommandHandler, handlerName: string): void {
    const existing = this.handlers.get(command);
    if (existing !== undefined) {
      throw new DuplicateHandlerError(
        `two handlers for command ${command.name}: ${existing.constructor.name} and ${handlerName}`,
      );
    }
    this.handlers.set(command, handler);
  }

  /** The handler of `command`'s class; throws {@link UnknownCommandError} naming the class. */
  handlerFor(command: object): ICommandHandler {
    const handler = this.handlers.get(command.constructor as Type);
    if (handler === undefined) {
      const name = (command.constructor as Type | undefined)?.name ?? typeof command;
      throw new UnknownCommandError(`no @CommandHandler is registered for command ${name}`);
    }
    if (this.subject.observed) this.subject.next(command);
    return handler;
  }

  /** @internal */
  complete(): void {
    this.subject.complete();
  }
}
