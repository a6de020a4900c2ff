/**
 * The UTC timestamp in the names of backups and side files (`20261125T101530Z`): sortable, free
 * of characters a file system or a shell would mind, one a second (callers add a counter when
 * two land in the same second).
 */
export function fileStamp(now: Date = new Date()): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
