import { performance } from 'node:perf_hooks';

/**
 * How long one slice of background work (a compaction chunk) may hold the event loop. Commands
 * wait at most about this long behind it, plus one fsync under `always`.
 */
export const SLICE_MS = 2;

/** Lets the commands that arrived during a slice run (and commit) before the next slice. */
export function yieldToCommands(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Runs `step(limit)` until it reports it is done, sizing `limit` so that each step takes about
 * {@link SLICE_MS}, and yielding to the event loop between steps. `step` returns how many units
 * it did; fewer than `limit` means done. `check` runs before each step and throws to abort;
 * `between`, when given, runs as a slice of its own after each step (the compaction's checkpoint).
 */
export async function inSlices(
  step: (limit: number) => number,
  check: () => void,
  initial: number,
  between?: () => void,
): Promise<number> {
  let limit = initial;
  let total = 0;
  for (;;) {
    check();
    const started = performance.now();
    const done = step(limit);
    total += done;
    const took = performance.now() - started;
    if (between !== undefined) {
      await yieldToCommands();
      between();
    }
    if (done < limit) return total;
    // Towards the slice length: shrink at once when a step overran, grow by at most 2×.
    const scale = took > 0 ? SLICE_MS / took : 2;
    limit = Math.max(16, Math.round(limit * Math.min(2, scale)));
    await yieldToCommands();
  }
}
