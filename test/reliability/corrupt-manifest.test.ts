import * as path from 'node:path';
import { CorruptLogError } from 'appendonly';
import {
  formatManifest,
  type Manifest,
  type ManifestEntry,
  parseManifest,
} from '../../adapters/aof/manifest';
import fc from 'fast-check';

/*
 * The manifest parser, property-based: random bytes, manifest-shaped text, valid manifests
 * mutated, and lines naming hostile files. `parseManifest` either returns a manifest that keeps
 * its invariants (at most one base, incr seq increasing, every name a bare file name that stays
 * in the log folder) or throws CorruptLogError naming the line and an offset in the text:
 * never another exception, never a path (`/`, `\`, `.`, `..`, a NUL) accepted as a name.
 */

const soak = process.env.APPENDONLY_SOAK ? 10 : 1;
const runs = (n: number) => ({ numRuns: n * soak });
const FILE = 'appendonly.aof.manifest';
const DIR = path.resolve('/data/appendonlydir');

function outcome(text: Buffer): Manifest | CorruptLogError {
  try {
    return parseManifest(text, FILE);
  } catch (err) {
    if (err instanceof CorruptLogError) return err;
    throw err; // anything else fails the property, with the input shrunk
  }
}

/** What any input must give: a sound manifest, or the documented error naming the line. */
function expectSound(text: Buffer): Manifest | CorruptLogError {
  const out = outcome(text);
  if (out instanceof CorruptLogError) {
    expect(out.file).toBe(FILE);
    expect(out.offset).toBeGreaterThanOrEqual(0);
    expect(out.offset).toBeLessThanOrEqual(text.length);
    if (text.length === 0) expect(out.message).toContain('the manifest is empty');
    else {
      const line = Number(/\(line (\d+): /.exec(out.message)?.[1]);
      expect(line).toBeGreaterThanOrEqual(1);
      // The line named is the one at the offset named.
      expect(line).toBe(text.subarray(0, out.offset).filter((b) => b === 10).length + 1);
    }
    return out;
  }
  const entries: ManifestEntry[] = [...(out.base ? [out.base] : []), ...out.history, ...out.incrs];
  expect(entries.length).toBeGreaterThan(0);
  for (const e of entries) {
    expect(e.name).not.toMatch(/[/\\\0]/);
    expect(['', '.', '..']).not.toContain(e.name);
    expect(path.dirname(path.resolve(DIR, e.name))).toBe(DIR);
    expect(Number.isSafeInteger(e.seq) && e.seq !== 0).toBe(true);
    expect(['b', 'h', 'i']).toContain(e.type);
  }
  if (out.base) expect(out.base.type).toBe('b');
  for (let i = 1; i < out.incrs.length; i++) expect(out.incrs[i].seq).toBeGreaterThan(out.incrs[i - 1].seq);
  return out;
}

const hostileNames = [
  '../x',
  '..',
  '.',
  '/etc/passwd',
  '/x',
  'a/b',
  'a/../../b',
  '..\\x',
  'C:\\x',
  'a\0b',
  '\0',
  'x\0/../y',
  '../../appendonly.aof.1.incr.aof',
];
/** The name as the manifest may spell it: bare, "double quoted" with \xHH escapes, or 'single quoted'. */
const spelled = (name: string, how: number): string =>
  how === 0
    ? name
    : how === 1
      ? `"${[...name].map((c) => (c < ' ' || c === '"' || c === '\\' || c === '/' ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : c)).join('')}"`
      : `'${name}'`;

const goodName = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).filter((n) => n !== '.' && n !== '..');
const entry = fc.record({
  name: goodName,
  seq: fc.integer({ min: 1, max: 1e6 }),
  type: fc.constantFrom('b', 'h', 'i'),
});
const validManifest = fc
  .array(entry, { minLength: 1, maxLength: 5 })
  .filter((es) => es.some((e) => e.type !== 'h')) // history alone is not a log (Redis: an empty manifest)
  .map((es) => {
    let seq = 0;
    const incrs = es
      .filter((e) => e.type === 'i')
      .map((e) => {
        seq += e.seq; // strictly increasing, as Redis requires
        return { ...e, type: 'i' as const, seq };
      });
    const base = es.find((e) => e.type === 'b');
    return formatManifest({
      base: base ? { ...base, type: 'b' } : null,
      history: es.filter((e) => e.type === 'h').map((e) => ({ ...e, type: 'h' as const })),
      incrs,
    });
  });
const words = fc.constantFrom(
  'file',
  'seq',
  'type',
  'b',
  'i',
  'h',
  'x',
  '1',
  '0',
  '-1',
  '99999999999999999999',
  'startseq',
  '"',
  "'",
  '"a b"',
  '\\x00',
  '\\',
  '/',
  '..',
  '#',
  ' ',
  '\t',
  '\r',
  '\n',
  '\0',
);

describe('the manifest parser on hostile text (fast-check)', () => {
  it('random bytes: a sound manifest or CorruptLogError naming the line', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => void expectSound(Buffer.from(b))),
      runs(1500),
    );
  });

  it('manifest-shaped word soup: a sound manifest or CorruptLogError naming the line', () => {
    fc.assert(
      fc.property(
        fc.array(words, { maxLength: 30 }),
        (ws) => void expectSound(Buffer.from(ws.join(' ').replace(/ ?\n ?/g, '\n'))),
      ),
      runs(1500),
    );
  });

  it('a valid manifest reads back; mutated (flip, insert, delete), it stays sound', () => {
    fc.assert(
      fc.property(
        validManifest,
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        fc.constantFrom('flip', 'insert', 'delete'),
        words,
        (text, at, bit, op, word) => {
          const bytes = Buffer.from(text);
          expect(outcome(bytes)).not.toBeInstanceOf(CorruptLogError);
          const i = at % bytes.length;
          let mutated: Buffer;
          if (op === 'flip') {
            mutated = Buffer.from(bytes);
            mutated[i] ^= 1 << bit;
          } else if (op === 'insert')
            mutated = Buffer.concat([bytes.subarray(0, i), Buffer.from(word), bytes.subarray(i)]);
          else mutated = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
          expectSound(mutated);
        },
      ),
      runs(1500),
    );
  });

  it('a line naming a file outside the folder (../x, an absolute path, a NUL) is refused, naming the line', () => {
    fc.assert(
      fc.property(
        validManifest,
        fc.constantFrom(...hostileNames),
        fc.integer({ min: 0, max: 2 }),
        fc.constantFrom('b', 'h', 'i'),
        (before, name, how, type) => {
          const lines = before.split('\n').length;
          const out = expectSound(
            Buffer.from(`${before}file ${spelled(name, how)} seq 999999 type ${type}\n`),
          );
          expect(out).toBeInstanceOf(CorruptLogError);
          expect((out as CorruptLogError).message).toContain(`(line ${lines}: `);
        },
      ),
      runs(500),
    );
  });
});
