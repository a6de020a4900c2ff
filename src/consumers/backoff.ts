/**
 * The wait before retry `attempt` (1 = the first retry): exponential from `baseMs`, capped at
 * `maxMs`, with full jitter (a random wait between half and all of it), so that consumers that
 * failed together do not retry together.
 */
export function retryDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Sleeps `ms`, or less when `abort` is called first; `unref`: the timer alone keeps no process up. */
export function sleep(ms: number, unref = false): { done: Promise<void>; abort: () => void } {
  let abort = () => {};
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (unref) timer.unref();
    abort = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return { done, abort };
}
