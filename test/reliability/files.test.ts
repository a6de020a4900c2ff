import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createApp, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';

const { Put, conformanceClasses } = fixtures;

/** Every file and folder below `dir` (inclusive), with its permission bits. */
function modes(dir: string): Map<string, number> {
  const out = new Map<string, number>([['.', fs.statSync(dir).mode & 0o777]]);
  for (const entry of fs.readdirSync(dir, { recursive: true }) as string[]) {
    out.set(entry, fs.statSync(path.join(dir, entry)).mode & 0o777);
  }
  return out;
}

describe('data files are private by default (0600 files, 0700 folders)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-modes-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('AofStore: manifest, base, incr and history files, and their folders', async () => {
    const data = path.join(dir, 'data');
    const app = await createApp({
      ...conformanceClasses,
      store: new AofStore({ dir: data, keepHistory: true }),
      logger: silentLogger,
    });
    await app.execute(new Put('a', 1));
    await app.compact();
    await app.execute(new Put('b', 2));
    await app.close();
    const found = modes(data);
    expect([...found.keys()].some((f) => f.includes('history'))).toBe(true);
    for (const [name, mode] of found) {
      const isDir = fs.statSync(path.join(data, name)).isDirectory();
      expect(`${name} ${mode.toString(8)}`).toBe(`${name} ${isDir ? '700' : '600'}`);
    }
  });

  it('AofStore: modes are configurable', async () => {
    const data = path.join(dir, 'shared');
    const app = await createApp({
      ...conformanceClasses,
      store: new AofStore({ dir: data, fileMode: 0o640, dirMode: 0o750 }),
      logger: silentLogger,
    });
    await app.execute(new Put('a', 1));
    await app.close();
    const found = modes(data);
    expect(found.get('.')).toBe(0o750);
    expect(found.get(path.join('appendonlydir', 'appendonly.aof.manifest'))).toBe(0o640);
  });

  it('SqliteWalStore: the database and its WAL', async () => {
    const file = path.join(dir, 'app.db');
    const store = new SqliteWalStore({ file, appendfsync: 'always' });
    const app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    await app.execute(new Put('a', 1));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
    await app.close();
  });
});
