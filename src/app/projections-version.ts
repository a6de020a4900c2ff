import { ConfigError } from '../errors';

/**
 * What a projections version may be, once written as text: 1 to 64 of letters, digits and
 * `. _ : + @ / -`. The stores record it as it is, unquoted (a word of the AOF manifest line, which
 * Redis splits on blanks and quotes; a meta row), and messages quote it: a version without blanks
 * or quotes reads the same everywhere.
 */
const VERSION_TEXT = /^[A-Za-z0-9._:+@/-]{1,64}$/;

/** True for a version text the stores can record as it is (see above). */
export function isProjectionsVersionText(text: string): boolean {
  return VERSION_TEXT.test(text);
}

/**
 * `createApp`'s `projectionsVersion` as the text the stores record and compare: a number is
 * its decimal form (so `2` and `'2'` are one version). Absent stays absent (an unversioned app).
 * Throws `ConfigError` for anything else.
 */
export function projectionsVersionText(version: unknown): string | undefined {
  if (version === undefined) return undefined;
  if (typeof version === 'number') {
    if (Number.isSafeInteger(version) && version >= 0) return String(version);
  } else if (typeof version === 'string' && VERSION_TEXT.test(version)) {
    return version;
  }
  throw new ConfigError(
    `projectionsVersion must be a non-negative integer or 1 to 64 letters, digits and . _ : + @ / -; got ${JSON.stringify(version) ?? String(version)}`,
  );
}

/**
 * The rule of a snapshot's projections version: the app loads the snapshot as it is unless both
 * have a version and they differ. An unversioned app (no `projectionsVersion`) loads any
 * snapshot, as before versions existed; an unversioned snapshot (written by an unversioned app,
 * or by an appendonly without versions) loads under any version, so that adopting the option
 * never makes a log unloadable.
 */
export function snapshotMatches(
  appVersion: string | undefined,
  snapshotVersion: string | undefined,
): boolean {
  return appVersion === undefined || snapshotVersion === undefined || appVersion === snapshotVersion;
}
