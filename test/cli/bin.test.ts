import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aofApp, FlushAll, Put, ROOT, tempDir } from './helpers';

/*
 * The other suites run the bin from its TS sources; this one builds it with tsc, as
 * `npm run build` does, and runs the compiled file the way npm links a bin: through a symlink,
 * by its `#!/usr/bin/env node` line. The build goes to a temp folder (with node_modules linked
 * next to it), so that it does not depend on, or disturb, the checkout's dist/.
 */

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  engines: { node: string };
};

const BUILT_VERSION = `${pkg.version}-built`;

describe('the built bin', () => {
  let dir: string;
  let cleanup: () => void;
  let bin: string;
  beforeAll(() => {
    ({ dir, cleanup } = tempDir());
    const config = path.join(dir, 'tsconfig.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        extends: path.join(ROOT, 'tsconfig.build.json'),
        compilerOptions: {
          rootDir: ROOT,
          outDir: path.join(dir, 'dist'),
          typeRoots: [path.join(ROOT, 'node_modules/@types')],
          declaration: false,
          sourceMap: false,
        },
        include: [],
        files: [path.join(ROOT, 'cli/main.ts')],
      }),
    );
    const tsc = spawnSync(
      process.execPath,
      [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', config],
      {
        encoding: 'utf8',
      },
    );
    if (tsc.status !== 0) throw new Error(`the bin does not build with tsc:\n${tsc.stdout}${tsc.stderr}`);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    // The package's root, as npm installs it: package.json next to dist/. Its version differs from
    // the checkout's, so that --version shows the bin reads the file next to it, at run time.
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, version: BUILT_VERSION }));
    fs.mkdirSync(path.join(dir, '.bin'));
    bin = path.join(dir, '.bin', 'appendonly');
    // npm links a bin and makes its target executable at install; tsc writes it 0644.
    fs.chmodSync(path.join(dir, 'dist/cli/main.js'), 0o755);
    fs.symlinkSync(path.join(dir, 'dist/cli/main.js'), bin);
  }, 120_000);
  afterAll(() => cleanup());

  it('package.json names the compiled cli/main.js as the appendonly bin', () => {
    expect(pkg.bin.appendonly).toBe('./dist/cli/main.js');
  });

  it('package.json asks for a node with zlib.crc32 (20.15 on the 20 line, 22.2 after it)', () => {
    expect(pkg.engines.node).toBe('^20.15.0 || >=22.2.0');
  });

  it('runs through its symlink and shebang: --help, check, strip', async () => {
    const data = path.join(dir, 'data');
    const app = await aofApp({ dir: data, appendfsync: 'always' });
    await app.execute(new Put('k', 1));
    await app.execute(new FlushAll());
    await app.close();
    const run = (args: string[]) => {
      const r = spawnSync(bin, args, { encoding: 'utf8' });
      if (r.error) throw r.error;
      return r;
    };
    const help = run(['--help']);
    expect(help.status).toBe(0);
    for (const c of ['check', 'info', 'cat', 'rewrite', 'truncate', 'strip', 'convert'])
      expect(help.stdout).toContain(c);
    const version = run(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout).toBe(`${BUILT_VERSION}\n`);
    expect(run(['check', data]).status).toBe(0);
    expect(run(['strip', data, '--type', 'FLUSHALL', '--last', '--yes']).status).toBe(0);
    expect(run(['cat', data]).stdout).toMatch(/^1 \S+ SET \{"key":"k","value":1\}/m);
  });

  it("the checkout's own dist/cli/main.js works too, once `npm run build` has made it", () => {
    const built = path.join(ROOT, 'dist/cli/main.js');
    if (!fs.existsSync(built)) {
      // Not a skip: the temp build above is the same compiler on the same sources.
      expect(fs.existsSync(path.join(dir, 'dist/cli/main.js'))).toBe(true);
      return;
    }
    const r = spawnSync(process.execPath, [built, 'check', '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('appendonly check ./data --fix --yes');
  });
});
