/*
 * What the consumer crash workers share: a stream of commands without pause, and the two ways a
 * run ends (killed after READY, or finished).
 */

/** Runs `executeNext` in `loops` loops without pause; the function returned stops them all. */
export function commandStream(loops: number, executeNext: () => Promise<unknown>): () => Promise<void> {
  let stop = false;
  const running = Array.from({ length: loops }, async () => {
    while (!stop) await executeNext();
  });
  return async () => {
    stop = true;
    await Promise.all(running);
  };
}

/**
 * Without `finish`: prints `READY` and resolves with false (the process runs until killed). With
 * it: lets the commands run a while longer, stops them, and resolves with true.
 */
export async function readyOrFinish(finish: boolean, stop: () => Promise<void>): Promise<boolean> {
  if (!finish) {
    process.stdout.write('READY\n');
    return false;
  }
  await new Promise((r) => setTimeout(r, 200));
  await stop();
  return true;
}
