import { AppClosedError, createApp, MemoryStore, silentLogger } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { ConsumerHub } from '../../src/consumers/consumer-hub';
import { RecentGroups } from '../../src/consumers/recent-groups';
import { systemClock } from '../../src/runtime/clock';

const { Put, conformanceClasses } = fixtures;

/** Resolves with `value` after `ms`, unless `cancel` is called first (no timer left behind). */
function after(ms: number, value: string): { done: Promise<string>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<string>((r) => {
    timer = setTimeout(() => r(value), ms);
  });
  return { done, cancel: () => clearTimeout(timer) };
}

/**
 * `caughtUp()` asks for the head first (on PostgreSQL a query), then waits for the consumer to
 * reach it. A close that ends while the head is on its way settles the waiters already: the
 * call must be refused then, not wait for a consumer that will never move.
 */
describe('caughtUp racing a close', () => {
  it('rejects with AppClosedError when the consumer closed while the head was read', async () => {
    // given: a hub on a real memory log of two events, whose head, once gated, answers only
    // when told
    const store = new MemoryStore();
    const app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    await app.execute(new Put('a', 1));
    await app.execute(new Put('b', 2));
    let answerHead: (head: number) => void = () => {};
    const gatedHead = new Promise<number>((r) => (answerHead = r));
    let gated = false;
    const hub = new ConsumerHub({
      store,
      recent: new RecentGroups(),
      logger: silentLogger,
      clock: systemClock,
      cap: () => 2,
      head: () => (gated ? gatedHead : Promise.resolve(2)),
      knownHead: () => 2,
      react: () => Promise.reject(new Error('no reactions here')),
    });
    // and a consumer held in its first event
    let releaseHandler: () => void = () => {};
    const handlerGate = new Promise<void>((r) => (releaseHandler = r));
    const sub = await hub.subscribe('slow', () => handlerGate);
    // when: caughtUp is called, the consumer closes, and only then does the head come
    gated = true;
    const caught = sub.caughtUp().then(
      () => 'caught up',
      (err: unknown) => err,
    );
    const closing = sub.close();
    releaseHandler();
    await closing;
    answerHead(2);
    // then: refused at once (a hang shows as 'still waiting')
    const hang = after(2_000, 'still waiting');
    const outcome = await Promise.race([caught, hang.done]);
    hang.cancel();
    expect(outcome).toBeInstanceOf(AppClosedError);
    await app.close();
  });
});
