import { isProjectionsVersionText } from '../../src/app/projections-version';
import { CorruptLogError } from '../../src/index';

/*
 * The Redis 7 manifest: one line per file, `file <name> seq <n> type <b|h|i>`, parsed by the
 * rules of aof.c's aofLoadManifestFromFile, so that Redis and redis-check-aof read what we
 * write and we read what they write: lines of at most 1024 bytes, `#` lines skipped, an even
 * number (≥ 6) of space-separated words, unknown key/value pairs ignored, at most one base,
 * incr seq strictly increasing, a file name never a path. Any error names the line.
 *
 * appendonly adds pairs Redis ignores: `startseq <n>` on an incr file (the sequence number of
 * its first event), and on a base `lastseq <n>` (the last sequence number it covers) and
 * `projver <version>` (the projections version of the state it holds, when the app has one).
 * The version lives here, not in the base file, so that the base stays Redis's plain SET
 * records, and so that the manifest, which a replay reads first, says which snapshot it names
 * before a byte of it is read. Code that does not know the pair (Redis, an older appendonly)
 * drops it when it rewrites the manifest: the base then reads as unversioned, never as
 * another version.
 */

/** A file named in the manifest. */
export interface ManifestEntry {
  readonly name: string;
  readonly seq: number;
  readonly type: 'b' | 'h' | 'i';
  /**
   * Incr files: the sequence number of the first event (absent: continues the previous file).
   * History files (`type h`, kept for consumers: see rewrite.ts) always have it.
   */
  readonly startSeq?: number;
  /** Base files: the last sequence number the base covers. */
  readonly lastSeq?: number;
  /** Base files: the projections version of the state it holds (absent: unversioned). */
  readonly projectionsVersion?: string;
}

/** The parsed manifest: base first, then incr files in order; history files are listed apart. */
export interface Manifest {
  readonly base: ManifestEntry | null;
  readonly incrs: readonly ManifestEntry[];
  readonly history: readonly ManifestEntry[];
}

const MAX_LINE = 1024;

/** Parses a manifest; throws {@link CorruptLogError} naming the line and what was expected. */
export function parseManifest(text: Buffer, path: string): Manifest {
  let base: ManifestEntry | null = null;
  const incrs: ManifestEntry[] = [];
  const history: ManifestEntry[] = [];
  let maxSeq = 0;
  let pos = 0;
  let lineNo = 0;
  /** Where the last line read starts, for an error about the manifest as a whole. */
  let lastLine = 0;
  if (text.length === 0)
    throw new CorruptLogError(path, 0, 'at least one file line', 'the manifest is empty');
  while (pos < text.length) {
    lineNo++;
    const nl = text.indexOf(10, pos);
    const end = nl < 0 ? text.length : nl;
    const fail = (expected: string, detail: string): never => {
      throw new CorruptLogError(
        path,
        pos,
        expected,
        `line ${lineNo}: ${detail}: '${text.toString('utf8', pos, Math.min(end, pos + 200)).trim()}'`,
      );
    };
    // Redis reads with fgets(buf, 1025): a longer line is an error even when it is a comment.
    if (end - pos + (nl < 0 ? 0 : 1) > MAX_LINE && text[pos] !== 35)
      fail(`a line of at most ${MAX_LINE} bytes`, 'too long');
    if (text[pos] === 35) {
      lastLine = pos;
      pos = end + 1;
      continue;
    }
    if (nl < 0) fail('a line ending with a newline', 'the last line is not terminated');
    const line = text.toString('utf8', pos, end).replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
    if (line.length === 0) fail('a file line', 'empty line');
    const argv = splitArgs(line);
    if (argv === null || argv.length < 6 || argv.length % 2 !== 0)
      fail('`file <name> seq <n> type <b|h|i>`', 'invalid format');
    let name: string | undefined;
    let seq = 0;
    let type = '';
    let startSeq: number | undefined;
    let lastSeq: number | undefined;
    let projectionsVersion: string | undefined;
    for (let i = 0; i < argv!.length; i += 2) {
      const key = argv![i].toLowerCase();
      const value = argv![i + 1];
      if (key === 'file') {
        name = value;
        // A NUL too: C (and Redis) would read the name up to it, so it would not name what it says.
        if (
          name.includes('/') ||
          name.includes('\\') ||
          name.includes('\0') ||
          name === '.' ||
          name === '..' ||
          name.length === 0
        ) {
          fail('a bare file name', "a file can't be a path, just a file name");
        }
      } else if (key === 'seq') seq = atoll(value);
      else if (key === 'type') type = value[0] ?? '';
      else if (key === 'startseq') startSeq = atoll(value);
      else if (key === 'lastseq') lastSeq = atoll(value);
      else if (key === 'projver' && value.length > 0) projectionsVersion = value;
      // Beyond 2^53 a number is no longer exact: the next incr file's seq (seq + 1) could repeat
      // a name already in use. Redis's atoll would saturate instead; either way, not a real log.
      if ((key === 'seq' || key === 'startseq' || key === 'lastseq') && !Number.isSafeInteger(atoll(value)))
        fail('a sequence number of at most 2^53 - 1', `${key} is out of range`);
    }
    if (name === undefined || seq === 0 || type === '')
      fail('`file`, `seq` and `type` on every line', 'invalid format');
    const entry: ManifestEntry = { name: name!, seq, type: type as ManifestEntry['type'] };
    if (type === 'b') {
      if (base !== null) fail('at most one base file', 'found duplicate base file information');
      base = {
        ...entry,
        ...(lastSeq !== undefined ? { lastSeq } : {}),
        ...(projectionsVersion !== undefined ? { projectionsVersion } : {}),
      };
    } else if (type === 'h') {
      history.push(startSeq !== undefined ? { ...entry, startSeq } : entry);
    } else if (type === 'i') {
      if (seq <= maxSeq) fail('incr files in increasing seq order', 'found a non-monotonic sequence number');
      maxSeq = seq;
      incrs.push(startSeq !== undefined ? { ...entry, startSeq } : entry);
    } else {
      fail('type b, h or i', 'unknown AOF file type');
    }
    lastLine = pos;
    pos = end + 1;
  }
  // As Redis ("Found an empty AOF manifest"): a manifest of comments or history lines alone is
  // damage, not an empty log. Loading it would start empty and clear the unnamed log files away.
  if (base === null && incrs.length === 0) {
    throw new CorruptLogError(
      path,
      lastLine,
      'a base or incr file line',
      `line ${lineNo}: the manifest names no base and no incr file`,
    );
  }
  return { base, incrs, history };
}

/** Formats a manifest as Redis does (base, history, incr), with our extra pairs. */
export function formatManifest(m: Manifest): string {
  let out = '';
  const line = (e: ManifestEntry): string => {
    let s = `file ${e.name} seq ${e.seq} type ${e.type}`;
    if (e.type === 'b' && e.lastSeq !== undefined) s += ` lastseq ${e.lastSeq}`;
    if (e.type === 'b' && e.projectionsVersion !== undefined) {
      // Written unquoted: a version with a blank or a quote would split into other words.
      if (!isProjectionsVersionText(e.projectionsVersion))
        throw new Error(
          `the projections version ${JSON.stringify(e.projectionsVersion)} cannot be written in an AOF manifest (1 to 64 letters, digits and . _ : + @ / -)`,
        );
      s += ` projver ${e.projectionsVersion}`;
    }
    if ((e.type === 'i' || e.type === 'h') && e.startSeq !== undefined) s += ` startseq ${e.startSeq}`;
    return `${s}\n`;
  };
  if (m.base) out += line(m.base);
  for (const h of m.history) out += line(h);
  for (const i of m.incrs) out += line(i);
  return out;
}

/** C's atoll: leading blanks, optional sign, digits; anything else ends it; none → 0. */
function atoll(s: string): number {
  const m = /^[ \t]*([+-]?\d+)/.exec(s);
  return m ? Number.parseInt(m[1], 10) : 0;
}

/**
 * Redis's sdssplitargs: words separated by blanks; "double quotes" with \n \r \t \b \a \\ \" \xHH
 * escapes and 'single quotes' with \' ; a closing quote must be followed by a blank or the end.
 * Returns null on unbalanced quotes.
 */
export function splitArgs(line: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  const blank = (c: string | undefined) => c === ' ' || c === '\n' || c === '\r' || c === '\t' || c === '\0';
  while (true) {
    while (i < n && blank(line[i])) i++;
    if (i >= n) return out;
    let cur = '';
    let inDq = false;
    let inSq = false;
    let done = false;
    while (!done) {
      const c = line[i];
      if (inDq) {
        if (c === undefined) return null;
        if (c === '\\' && line[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
          cur += String.fromCharCode(Number.parseInt(line.slice(i + 2, i + 4), 16));
          i += 3;
        } else if (c === '\\' && i + 1 < n) {
          i++;
          const e = line[i];
          cur +=
            e === 'n'
              ? '\n'
              : e === 'r'
                ? '\r'
                : e === 't'
                  ? '\t'
                  : e === 'b'
                    ? '\b'
                    : e === 'a'
                      ? '\x07'
                      : e;
        } else if (c === '"') {
          if (i + 1 < n && !blank(line[i + 1])) return null;
          done = true;
        } else cur += c;
      } else if (inSq) {
        if (c === undefined) return null;
        if (c === '\\' && line[i + 1] === "'") {
          i++;
          cur += "'";
        } else if (c === "'") {
          if (i + 1 < n && !blank(line[i + 1])) return null;
          done = true;
        } else cur += c;
      } else if (c === undefined || blank(c)) {
        done = true;
      } else if (c === '"') inDq = true;
      else if (c === "'") inSq = true;
      else cur += c;
      if (i < n) i++;
    }
    out.push(cur);
  }
}
