import { checkAofFiles } from '../adapters/aof/tools/check';
import { invalid } from './errors';
import type { AofTarget } from './target';

/** Refuses to edit a log that does not load whole: its damage must be repaired (or cut) first. */
export async function assertAofValid(target: AofTarget, command: string): Promise<void> {
  const verdicts = await checkAofFiles(target.files);
  const bad = verdicts.find((v) => !v.valid);
  if (bad !== undefined) {
    throw invalid(
      `refusing to ${command}: ${bad.file.name} is damaged at byte offset ${bad.goodUpTo} ` +
        `(${bad.ours?.message ?? bad.redis.error?.message}); run \`appendonly check --fix\` first`,
    );
  }
}
