import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../cli/main';
import { aofApp, cli, Put, ROOT, tempDir } from './helpers';

/*
 * The exit-code contract in-process (fast, and it keeps cli/ under the project's type check),
 * and the forms PATH may take. Everything else runs the bin as a child process.
 */
describe('appendonly main', () => {
  let dir: string;
  let cleanup: () => void;
  let stderr: jest.SpyInstance;
  let stdout: jest.SpyInstance;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    stderr.mockRestore();
    stdout.mockRestore();
    cleanup();
  });

  it('exit codes: 0 help, 2 unusable arguments, 1 refused operation', async () => {
    expect(await main(['--help'])).toBe(0);
    expect(await main(['check'])).toBe(2);
    expect(await main(['check', path.join(dir, 'missing')])).toBe(2);
    expect(await main(['truncate', dir, '--to-seq', '-1'])).toBe(2);
    expect(await main(['strip', dir])).toBe(2);
    const app = await aofApp({ dir });
    await app.execute(new Put('a', 1));
    await app.close();
    expect(await main(['check', dir])).toBe(0);
    expect(await main(['strip', dir, '--type', 'FLUSHALL'])).toBe(1);
    const lines = stderr.mock.calls.map((c) => String(c[0])).filter((l) => l.startsWith('appendonly: '));
    expect(lines.every((l) => l.split('\n').filter(Boolean).length === 1)).toBe(true);
  });
});

describe('appendonly --version', () => {
  it("prints package.json's version (the bin from the sources)", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = cli([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${pkg.version}\n`);
    }
  });
});

describe('PATH forms', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    const app = await aofApp({ dir });
    await app.execute(new Put('a', 1));
    await app.close();
  });
  afterEach(() => cleanup());

  it('the data folder, its appendonlydir/ and the manifest name the same log', () => {
    const forms = [
      dir,
      path.join(dir, 'appendonlydir'),
      path.join(dir, 'appendonlydir', 'appendonly.aof.manifest'),
    ];
    const outs = forms.map((p) => cli(['cat', p, '--json']));
    for (const o of outs) expect(o.status).toBe(0);
    expect(new Set(outs.map((o) => o.stdout)).size).toBe(1);
    expect(outs[0].stdout).toContain('"key":"a"');
  });
});
