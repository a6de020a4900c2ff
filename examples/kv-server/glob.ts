/**
 * Redis's glob-style pattern matching (stringmatchlen), for KEYS and CONFIG GET:
 * `*` any run, `?` one character, `[abc]` `[^abc]` `[a-z]` a set, `\x` the character x.
 *
 * A star remembers only the last place to resume from, which is enough for globs and keeps the
 * match linear in practice: a pattern such as `a*a*a*a*b` cannot make it backtrack exponentially.
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length) {
      if (pattern[p] === '*') {
        while (pattern[p] === '*') p++;
        if (p === pattern.length) return true;
        starP = p;
        starT = t;
        continue;
      }
      const next = matchOne(pattern, p, text[t]);
      if (next >= 0) {
        p = next;
        t++;
        continue;
      }
    }
    if (starP < 0) return false;
    starT++;
    t = starT;
    p = starP;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Matches one pattern element at `p` against `c`: the index after the element, or -1. */
function matchOne(pattern: string, p: number, c: string): number {
  const e = pattern[p];
  if (e === '?') return p + 1;
  if (e === '\\' && p + 1 < pattern.length) return pattern[p + 1] === c ? p + 2 : -1;
  if (e !== '[') return e === c ? p + 1 : -1;
  p++;
  const negate = pattern[p] === '^';
  if (negate) p++;
  let found = false;
  // As Redis, an unterminated set ends at the end of the pattern.
  while (p < pattern.length && pattern[p] !== ']') {
    if (pattern[p] === '\\' && p + 1 < pattern.length) {
      if (pattern[p + 1] === c) found = true;
      p += 2;
    } else if (pattern[p + 1] === '-' && p + 2 < pattern.length && pattern[p + 2] !== ']') {
      let lo = pattern[p];
      let hi = pattern[p + 2];
      if (lo > hi) [lo, hi] = [hi, lo];
      if (c >= lo && c <= hi) found = true;
      p += 3;
    } else {
      if (pattern[p] === c) found = true;
      p++;
    }
  }
  if (p < pattern.length) p++; // the ']'
  return found !== negate ? p : -1;
}
