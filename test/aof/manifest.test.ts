import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, CorruptLogError } from 'appendonly';
import { AofStore, nodeFileSystem } from 'appendonly/adapters/aof';
import { formatManifest, parseManifest } from '../../adapters/aof/manifest';
import { logDir, openApp, state, tempDir } from './helpers';

const parse = (text: string) => parseManifest(Buffer.from(text), 'm');

describe('manifest: Redis 7 parsing rules', () => {
  it('reads base and incr files, skips # lines, ignores unknown pairs, keeps our startseq/lastseq', () => {
    const m = parse(
      '# comment\nfile appendonly.aof.3.base.aof seq 3 type b lastseq 99 startoffset 0\n' +
        'file appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.5.incr.aof seq 5 type i startseq 100 future x\n' +
        'file "appendonly.aof.6.incr.aof" seq 6 type i\n',
    );
    expect(m.base).toEqual({ name: 'appendonly.aof.3.base.aof', seq: 3, type: 'b', lastSeq: 99 });
    expect(m.history).toEqual([{ name: 'appendonly.aof.1.incr.aof', seq: 1, type: 'h' }]);
    expect(m.incrs).toEqual([
      { name: 'appendonly.aof.5.incr.aof', seq: 5, type: 'i', startSeq: 100 },
      { name: 'appendonly.aof.6.incr.aof', seq: 6, type: 'i' },
    ]);
    expect(parse(formatManifest(m))).toEqual(m);
  });

  it.each([
    ['', /the manifest is empty/],
    ['file a seq 1 type i\n\n', /line 2: empty line/],
    ['file a seq 1\n', /line 1: invalid format/],
    ['file a seq 1 type i x\n', /line 1: invalid format/],
    ['file a seq 0 type i\n', /line 1: invalid format/],
    ['file ../etc/passwd seq 1 type b\n', /line 1: a file can't be a path/],
    ['file a/b seq 1 type b\n', /a file can't be a path/],
    ['file a seq 1 type b\nfile b seq 2 type b\n', /line 2: found duplicate base file information/],
    ['file a seq 2 type i\nfile b seq 2 type i\n', /line 2: found a non-monotonic sequence number/],
    ['file a seq 1 type x\n', /line 1: unknown AOF file type/],
    [`file ${'a'.repeat(1030)} seq 1 type i\n`, /line 1: too long/],
    ['file "a seq 1 type i\n', /line 1: invalid format/],
    ['file a seq 1 type i', /not terminated/],
  ])('refuses manifest %#, with the error naming the line', (text, message) => {
    expect(() => parse(text)).toThrow(CorruptLogError);
    expect(() => parse(text)).toThrow(message);
  });
});

describe('AofStore: what it finds in its folder', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('starts empty on a missing folder, creating it 0700 and its files 0600', async () => {
    const data = path.join(dir, 'data');
    const { app } = await openApp({ dir: data });
    expect(app.state.size).toBe(0);
    await app.close();
    expect(fs.statSync(data).mode & 0o777).toBe(0o700);
    expect(fs.statSync(logDir(data)).mode & 0o777).toBe(0o700);
    for (const f of fs.readdirSync(logDir(data)))
      expect(fs.statSync(path.join(logDir(data), f)).mode & 0o777).toBe(0o600);
  });

  it('refuses log files without a manifest, a manifest naming a missing file, and a broken manifest', async () => {
    fs.mkdirSync(logDir(dir));
    fs.writeFileSync(path.join(logDir(dir), 'appendonly.aof.1.incr.aof'), '');
    await expect(openApp({ dir })).rejects.toThrow(
      /the manifest is missing but log files exist \(appendonly\.aof\.1\.incr\.aof\)/,
    );
    fs.writeFileSync(
      path.join(logDir(dir), 'appendonly.aof.manifest'),
      'file appendonly.aof.2.incr.aof seq 2 type i\n',
    );
    await expect(openApp({ dir })).rejects.toThrow(
      /the file appendonly\.aof\.2\.incr\.aof that the manifest names \(it is missing\)/,
    );
    fs.writeFileSync(path.join(logDir(dir), 'appendonly.aof.manifest'), 'file x seq 1 type q\n');
    await expect(openApp({ dir })).rejects.toThrow(/line 1: unknown AOF file type/);
  });

  it('loads a log written by hand in Redis style (no startseq), numbering events from 1', async () => {
    fs.mkdirSync(logDir(dir));
    fs.writeFileSync(
      path.join(logDir(dir), 'appendonly.aof.manifest'),
      'file appendonly.aof.1.incr.aof seq 1 type i\n',
    );
    fs.writeFileSync(
      path.join(logDir(dir), 'appendonly.aof.1.incr.aof'),
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n42\r\n',
    );
    const { app } = await openApp({ dir });
    expect(state(app)).toEqual({ k: 42 });
    expect(app.stats().lastSeq).toBe(1);
    await app.close();
  });

  it('refuses unknown options and bad values at construction', () => {
    expect(() => new AofStore({ dir, appendFsync: 'always' } as never)).toThrow(ConfigError);
    expect(() => new AofStore({ dir, appendfsync: 'sometimes' as never })).toThrow(
      /appendfsync must be one of always, everysec, no/,
    );
    expect(() => new AofStore({ dir, appendFilename: '../x' })).toThrow(
      /appendFilename must be a bare file name/,
    );
    expect(() => new AofStore({ dir, autoRewritePercentage: -1 })).toThrow(
      /autoRewritePercentage must be an integer/,
    );
    expect(() => new AofStore({ dir, loadTruncated: 'yes' as never })).toThrow(
      /loadTruncated must be true or false/,
    );
    expect(() => new AofStore({ dir: '' })).toThrow(/dir must be a non-empty string/);
    expect(() => new AofStore({ dir, fs: {} as never })).toThrow(
      /fs must implement FileSystem; missing open/,
    );
    const { fdatasyncSync: _, ...asyncOnly } = nodeFileSystem;
    expect(() => new AofStore({ dir, fsyncOnEventLoop: true, fs: asyncOnly })).toThrow(
      /fsyncOnEventLoop needs an fs with fdatasyncSync/,
    );
  });
});
