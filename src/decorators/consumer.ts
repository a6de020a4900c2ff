import type { SubscribeOptions } from '../consumers/types';
import { CONSUMER, decoratedClasses, type Type } from './metadata';
import { injectableOnce } from './injectable-once';

/** @internal What `@Consumer` records on its class. */
export interface ConsumerBinding {
  readonly name: string;
  readonly options: SubscribeOptions;
}

/**
 * Marks a class as the durable consumer `name`: its `@On` methods are called as
 * `method(event, { seq, time })` for the events of their types, in log order, at least once (see
 * `app.subscribe`); events of other types move its position on. Given to `createApp({ consumers })`
 * (or bound in its container), it is subscribed once the app is ready. The class is resolved from
 * the inversify container, so its constructor may inject services.
 */
export function Consumer(name: string, options: SubscribeOptions = {}): ClassDecorator {
  return (target) => {
    injectableOnce(target);
    const binding: ConsumerBinding = { name, options };
    Reflect.defineMetadata(CONSUMER, binding, target);
    decoratedClasses.add(target as unknown as Type);
  };
}
