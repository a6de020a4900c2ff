import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nodeFileSystem } from 'appendonly/adapters/aof';
import { redisCheckFile, redisCheckManifest } from '../../adapters/aof/redis-check';
import { fixtures } from 'appendonly/testing';
import { logDir, openApp, tempDir } from './helpers';

const { Put, PutMany, Remove, Count, FlushAll } = fixtures;

/** Runs the real redis-check-aof (Debian's redis-tools) on a file or manifest. */
function redisCheckAof(file: string): { status: number | null; out: string } {
  const r = spawnSync('redis-check-aof', [file], { encoding: 'utf8' });
  if (r.error)
    throw new Error(`redis-check-aof could not run (apt-get install redis-tools): ${r.error.message}`);
  return { status: r.status, out: r.stdout + r.stderr };
}

function analyzed(out: string): { okUpTo: number; line: number } {
  const m = /ok_up_to=(\d+), ok_up_to_line=(\d+)/.exec(out);
  if (!m) throw new Error(`no analysis in: ${out}`);
  return { okUpTo: Number(m[1]), line: Number(m[2]) };
}

describe('redis-check-aof accepts what AofStore writes', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  async function writeSome(options: { aofTimestamps?: boolean } = {}): Promise<void> {
    const { app } = await openApp({ dir, appendfsync: 'always', ...options });
    await app.execute(new Put('crlf', 'a\r\nb\r\n*1\r\n$4\r\nEXEC\r\n'));
    await app.execute(
      new PutMany([
        ['u', 'ünï 🚀'],
        ['big', 'x'.repeat(70_000)],
      ]),
    );
    await app.execute(new Count('n', 1));
    await app.execute(new Remove(['u']));
    await app.execute(new FlushAll());
    await app.execute(new Put('after', { nested: [1, 2, null] }));
    await app.close();
  }

  it('before and after compaction, with and without #TS annotations', async () => {
    await writeSome({ aofTimestamps: true });
    const manifest = path.join(logDir(dir), 'appendonly.aof.manifest');
    let r = redisCheckAof(manifest);
    expect(r.out).toContain('All AOF files and manifest are valid');
    expect(r.status).toBe(0);

    const { app } = await openApp({ dir, appendfsync: 'always' });
    await app.execute(new Count('n', 2));
    await app.compact();
    await app.execute(
      new PutMany([
        ['p', 1],
        ['q', 2],
      ]),
    );
    await app.close();
    r = redisCheckAof(manifest);
    expect(r.out).toContain('Start to check BASE AOF (RESP format)');
    expect(r.out).toMatch(/BASE AOF appendonly\.aof\.\d+\.base\.aof is valid/);
    expect(r.out).toContain('All AOF files and manifest are valid');
    expect(r.status).toBe(0);
  });

  it('agrees with redis-check-aof on a multi-part log: per file, line numbers running on, a torn last file', async () => {
    await writeSome();
    const { app } = await openApp({ dir });
    await app.compact();
    await app.execute(
      new PutMany([
        ['p', 1],
        ['q', 2],
      ]),
    );
    await app.execute(new Count('n', 2));
    await app.close();
    const manifest = path.join(logDir(dir), 'appendonly.aof.manifest');
    const incr = path.join(logDir(dir), 'appendonly.aof.2.incr.aof');
    fs.truncateSync(incr, fs.statSync(incr).size - 30);
    const theirs = redisCheckAof(manifest);
    const analyses = [
      ...theirs.out.matchAll(/filename=(\S+), size=(\d+), ok_up_to=(\d+), ok_up_to_line=(\d+)/g),
    ].map((m) => ({
      name: m[1],
      size: Number(m[2]),
      okUpTo: Number(m[3]),
      okUpToLine: Number(m[4]),
    }));
    const ours = await redisCheckManifest(nodeFileSystem, manifest);
    expect(ours.map(({ name, size, okUpTo, okUpToLine }) => ({ name, size, okUpTo, okUpToLine }))).toEqual(
      analyses,
    );
    expect(analyses).toHaveLength(2);
    expect(theirs.status).toBe(1);
    expect(ours[1].okUpTo).toBeLessThan(ours[1].size);
  });

  it('agrees with redis-check-aof on ok_up_to and ok_up_to_line for every truncation and for flipped bytes', async () => {
    const { app } = await openApp({ dir, appendfsync: 'always', aofTimestamps: true });
    await app.execute(new Put('a', 'x\r\ny'));
    await app.execute(
      new PutMany([
        ['b', 1],
        ['c', 'ü'],
      ]),
    );
    await app.execute(new Remove(['a']));
    await app.execute(new Count('n', 3));
    await app.close();
    const original = fs.readFileSync(path.join(logDir(dir), 'appendonly.aof.1.incr.aof'));
    const file = path.join(dir, 'variant.aof');
    const variants: Buffer[] = [];
    for (let cut = 1; cut <= original.length; cut += 3) variants.push(original.subarray(0, cut));
    for (const at of [0, 20, 40, 60, 61, 90, 120, 150, 200]) {
      for (const byte of [0x2a, 0x24, 0x23, 0x0d, 0x41]) {
        const v = Buffer.from(original);
        v[at] = byte;
        variants.push(v);
      }
    }
    // Annotation and MULTI edge cases.
    variants.push(Buffer.from('*1\r\n$5\r\nMULTI\r\n*1\r\n$5\r\nmulti\r\n*1\r\n$4\r\nEXEC\r\n'));
    variants.push(Buffer.from('*1\r\n$4\r\nexec\r\n'));
    variants.push(Buffer.from(`#${'c'.repeat(1500)}\r\n*1\r\n$8\r\nFLUSHALL\r\n`));
    variants.push(Buffer.from('#TS:1\r\n*1\r\n$5\r\nMULTI\r\n#x\r\n*1\r\n$8\r\nFLUSHALL\r\n'));
    for (const v of variants) {
      fs.writeFileSync(file, v);
      const theirs = redisCheckAof(file);
      const ours = await redisCheckFile(nodeFileSystem, file, 64);
      const want = analyzed(theirs.out);
      const context = `${JSON.stringify(v.toString('latin1'))}\n${theirs.out}`;
      expect({ okUpTo: ours.okUpTo, line: 1 + ours.lines, context }).toEqual({ ...want, context });
      expect({ valid: ours.okUpTo === ours.size, context }).toEqual({ valid: theirs.status === 0, context });
    }
  });
});
