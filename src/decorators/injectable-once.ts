import { injectable } from 'inversify';

/**
 * Makes a class `@injectable()` unless it already is: inversify refuses the decorator twice, and
 * users coming from NestJS often write `@injectable()` beside ours.
 */
export function injectableOnce(target: Function): void {
  try {
    injectable()(target as new () => object);
  } catch (err) {
    if (!(err instanceof Error) || !/multiple times/.test(err.message)) throw err;
  }
}
