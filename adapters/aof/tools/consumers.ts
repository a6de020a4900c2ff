import * as path from 'node:path';
import type { ConsumerRecord } from '../../../src/index';
import { CONSUMERS_FILE, ConsumerFile } from '../consumer-file';
import { TEMP_PREFIX } from '../log-dir';
import { nodeFileSystem } from '../node-file-system';

/**
 * The consumers' records of the AOF log in `logDir`, read from their file without the store's
 * lock: the file is only ever replaced whole (rename), so a reader sees one version of it.
 */
export function readConsumerRecords(logDir: string): Promise<ConsumerRecord[]> {
  const file = new ConsumerFile(
    nodeFileSystem,
    logDir,
    path.join(logDir, CONSUMERS_FILE),
    path.join(logDir, `${TEMP_PREFIX}${CONSUMERS_FILE}`),
    undefined,
  );
  return file.load();
}
