import * as path from 'node:path';
import type { ConsumerRecord } from '../../../src/index';
import { CONSUMERS_FILE, ConsumerFile } from '../consumer-file';
import { TEMP_PREFIX } from '../log-dir';
import { nodeFileSystem } from '../node-file-system';
import { readLoggedPositions } from '../reader';
import type { AofFile } from './log-files';

/**
 * The consumers' records of the AOF log in `logDir`, read from their file without the store's
 * lock: the file is only ever replaced whole (rename), so a reader sees one version of it. Each
 * at the greater of its position and the one its reactions logged in the incr files `files`
 * (`@pos`), as the store reports them.
 */
export async function readConsumerRecords(
  logDir: string,
  files: readonly AofFile[],
): Promise<ConsumerRecord[]> {
  const file = new ConsumerFile(
    nodeFileSystem,
    logDir,
    path.join(logDir, CONSUMERS_FILE),
    path.join(logDir, `${TEMP_PREFIX}${CONSUMERS_FILE}`),
    undefined,
  );
  const incrs = files.filter((f) => f.kind === 'incr');
  return file.loadWith(await readLoggedPositions(nodeFileSystem, incrs));
}
