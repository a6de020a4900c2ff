// The consumer test (issue 16): the package as a user gets it. `npm pack` the build, install the
// tarball into an empty project outside the repository (so nothing of ours resolves from it),
// compile the README's examples there with strict TypeScript and `skipLibCheck: false`, run them,
// and load every entry point from ESM and from CommonJS: first with no SQLite driver installed
// (the AOF user: the sqlite-wal entry point must fail with its one line), then with
// better-sqlite3. `appendonly/nestjs` and `appendonly/opentelemetry`, whose peers are not
// installed here, must fail with their one line. Run by .ci/run after `npm test`; `node .ci/package-test.mjs` on its own.
//
// The driver is installed from this repository's own node_modules/better-sqlite3 (present after
// `npm ci`): its package.json, lib/ and the built binding are copied into the temporary
// project, so that the test neither compiles SQLite (a minute of CPU) nor touches the
// repository's node_modules. Everything else comes from npm with --prefer-offline (the cache
// `npm ci` filled).
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const started = Date.now();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-package-'));
const app = path.join(work, 'app');
const npmFlags = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
/** The line a user without the driver gets (adapters/common/drivers.ts). */
const MISSING_LINE =
  'appendonly/adapters/sqlite-wal needs the better-sqlite3 package, which is not installed: run `npm install better-sqlite3`';
/** The line for appendonly/nestjs in a project without Nest (never installed here). */
const NEST_LINE =
  'appendonly/nestjs needs the @nestjs/common package, which is not installed: run `npm install @nestjs/common`';
/** …and for appendonly/opentelemetry without @opentelemetry/api. */
const OTEL_LINE =
  'appendonly/opentelemetry needs the @opentelemetry/api package, which is not installed: run `npm install @opentelemetry/api`';
/** …and with the driver installed but its build skipped. */
const NOT_BUILT_LINE =
  'appendonly/adapters/sqlite-wal: better-sqlite3 is installed but its native build is missing (npm skipped its install script): ' +
  'run `npm approve-scripts better-sqlite3 && npm rebuild better-sqlite3`';

function step(what) {
  console.log(`package test: ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function run(cmd, args, cwd = app) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

function check(ok, message) {
  if (!ok) throw new Error(`package test: ${message}`);
}

/** The code block (```ts) that follows the heading `heading` in the README, as it is there. */
function readmeBlock(heading) {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(`\n${heading}\n`);
  check(at >= 0, `README.md has no heading ${JSON.stringify(heading)}`);
  const open = readme.indexOf('```ts\n', at);
  const close = readme.indexOf('\n```', open + 6);
  return readme.slice(open + 6, close + 1);
}

/** Writes the consumer's sources: the README's two examples and the two loaders. */
function writeSources() {
  const api = readmeBlock('## The API by example');
  const swap = readmeBlock('### Swapping the store');
  const declarations = api.slice(0, api.indexOf('const app = await createApp('));
  check(declarations.length < api.length, 'the API example no longer creates an app');
  const src = path.join(app, 'src');
  fs.mkdirSync(src, { recursive: true });
  // The API example as it is: an AOF app in ./data.
  fs.writeFileSync(path.join(src, 'api.ts'), api);
  // The swap example in the API example's context (its classes), with the imports it assumes.
  fs.writeFileSync(
    path.join(src, 'swap.ts'),
    [
      "import { Container, EVENT_STORE } from 'appendonly';",
      "import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';",
      declarations,
      swap,
      "await app.execute(new Deposit('bob', 7));",
      "if (app.state.get('balance:bob') !== 7) throw new Error('the SQLite app lost a deposit');",
      'await app.close();',
      '',
    ].join('\n'),
  );
  // Every entry point, from ESM and from CommonJS; argv[2] is `with` (the driver works) or the
  // one line the sqlite-wal entry point must fail with.
  const loader = (load) => `
const withDriver = process.argv[2] === 'with';
const main = ${load('appendonly')};
const aof = ${load('appendonly/adapters/aof')};
const testing = ${load('appendonly/testing')};
if (typeof main.createApp !== 'function' || typeof aof.AofStore !== 'function' || typeof testing.runStoreConformance !== 'function')
  throw new Error('an entry point lacks its exports');
let sqlite = null;
let error = null;
try { sqlite = ${load('appendonly/adapters/sqlite-wal')}; } catch (err) { error = err; }
if (withDriver) {
  if (error !== null) throw error;
  if (typeof sqlite.SqliteWalStore !== 'function') throw new Error('sqlite-wal lacks SqliteWalStore');
} else {
  if (error === null) throw new Error('sqlite-wal loaded without its driver');
  if (!(error instanceof main.MissingDriverError) || error.message !== process.argv[2])
    throw new Error('not the one line: ' + error.message);
}
let nest = null;
try { nest = ${load('appendonly/nestjs')}; } catch (err) { nest = err; }
if (!(nest instanceof main.MissingDriverError) || nest.message !== ${JSON.stringify(NEST_LINE)})
  throw new Error('appendonly/nestjs without Nest: not the one line: ' + (nest && nest.message));
let otel = null;
try { otel = ${load('appendonly/opentelemetry')}; } catch (err) { otel = err; }
if (!(otel instanceof main.MissingDriverError) || otel.message !== ${JSON.stringify(OTEL_LINE)})
  throw new Error('appendonly/opentelemetry without the API: not the one line: ' + (otel && otel.message));
console.log('ok');
`;
  fs.writeFileSync(
    path.join(app, 'load.mjs'),
    loader((id) => `await import(${JSON.stringify(id)})`),
  );
  fs.writeFileSync(
    path.join(app, 'load.cjs'),
    loader((id) => `require(${JSON.stringify(id)})`),
  );
}

/** tsc from the repository (the consumer installs no dev dependency of ours), strict, skipLibCheck off. */
function compile() {
  fs.rmSync(path.join(app, 'out'), { recursive: true, force: true });
  run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', app]);
}

/** Runs `args` with node in `cwd`; returns { status, stdout, stderr }. */
function node(args, cwd = app) {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectOk(args, what) {
  const r = node(args);
  check(r.status === 0, `${what} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

try {
  step('build and pack');
  run('npm', ['run', 'build', '--silent'], root);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root));
  const tarball = path.join(work, packed[0].filename);

  step('install the tarball into an empty project');
  fs.mkdirSync(app);
  fs.writeFileSync(
    path.join(app, 'package.json'),
    `${JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2)}\n`,
  );
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          skipLibCheck: false,
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          types: ['node'],
          rootDir: 'src',
          outDir: 'out',
        },
        include: ['src'],
      },
      null,
      2,
    )}\n`,
  );
  // @types/node: a Node project's own; the version this repository is built against.
  const typesNode = JSON.parse(
    fs.readFileSync(path.join(root, 'node_modules/@types/node/package.json'), 'utf8'),
  );
  run('npm', ['install', ...npmFlags, tarball, `@types/node@${typesNode.version}`]);
  check(
    !fs.existsSync(path.join(app, 'node_modules/better-sqlite3')),
    'npm installed better-sqlite3 (it is an optional peer)',
  );
  for (const file of fs.readdirSync(path.join(app, 'node_modules/appendonly/dist'), { recursive: true })) {
    if (!String(file).endsWith('.d.ts')) continue;
    const text = fs.readFileSync(path.join(app, 'node_modules/appendonly/dist', String(file)), 'utf8');
    check(
      !/(from|import\(|require\()\s*['"]better-sqlite3['"]/.test(text),
      `dist/${file} imports better-sqlite3's types`,
    );
  }
  writeSources();

  step('without a SQLite driver: compile the README examples');
  compile();
  step('without a SQLite driver: run the API example, the CLI, ESM and CommonJS');
  const data = path.join(app, 'data');
  expectOk(['out/api.js'], 'the API example');
  const info = expectOk(
    ['node_modules/appendonly/dist/cli/main.js', 'info', data],
    'appendonly info on the AOF log',
  );
  check(/keys after replay: 1\b/.test(info), `appendonly info: expected one key:\n${info}`);
  check(expectOk(['load.mjs', MISSING_LINE], 'load.mjs').trim() === 'ok', 'load.mjs');
  check(expectOk(['load.cjs', MISSING_LINE], 'load.cjs').trim() === 'ok', 'load.cjs');
  // The swap example compiles (above) but cannot run: its import fails with the one line, alone.
  const swap = node(['out/swap.js']);
  check(
    swap.status !== 0 && swap.stderr.includes(MISSING_LINE),
    `swap.js without the driver:\n${swap.stderr}`,
  );
  // The tool on a .db: the same line, exit 1, no stack trace.
  const db = path.join(work, 'other.db');
  fs.writeFileSync(db, Buffer.concat([Buffer.from('SQLite format 3\0', 'latin1'), Buffer.alloc(4080)]));
  const tool = node(['node_modules/appendonly/dist/cli/main.js', 'info', db]);
  check(
    tool.status === 1 && tool.stderr.trim() === `appendonly: ${MISSING_LINE}`,
    `appendonly info x.db:\n${tool.stderr}`,
  );

  step('install better-sqlite3 without its build (as when npm skips its install script)');
  const from = path.join(root, 'node_modules/better-sqlite3');
  const vendor = path.join(app, 'vendor/better-sqlite3');
  fs.mkdirSync(vendor, { recursive: true });
  fs.copyFileSync(path.join(from, 'package.json'), path.join(vendor, 'package.json'));
  fs.cpSync(path.join(from, 'lib'), path.join(vendor, 'lib'), { recursive: true });
  // --ignore-scripts: as npm does for a package allowScripts does not list.
  run('npm', ['install', ...npmFlags, '--ignore-scripts', './vendor/better-sqlite3']);
  check(expectOk(['load.mjs', NOT_BUILT_LINE], 'load.mjs, build skipped').trim() === 'ok', 'load.mjs');
  check(expectOk(['load.cjs', NOT_BUILT_LINE], 'load.cjs, build skipped').trim() === 'ok', 'load.cjs');

  step("add the binding (the repository's build: compiling SQLite would take a minute)");
  // npm linked ./vendor/better-sqlite3: the binding lands where `bindings` looks for it.
  fs.mkdirSync(path.join(vendor, 'build/Release'), { recursive: true });
  fs.copyFileSync(
    path.join(from, 'build/Release/better_sqlite3.node'),
    path.join(vendor, 'build/Release/better_sqlite3.node'),
  );

  step('with better-sqlite3: compile, run both examples, the CLI, ESM and CommonJS');
  compile();
  expectOk(['out/swap.js'], 'the swap example (SQLite)');
  const sqliteInfo = expectOk(
    ['node_modules/appendonly/dist/cli/main.js', 'info', path.join(data, 'app.db')],
    'appendonly info on the SQLite store',
  );
  // (its state needs the example's projections, which the tool is not given: it counts the events)
  check(/Deposited: 1\n/.test(sqliteInfo), `appendonly info app.db: expected one Deposited:\n${sqliteInfo}`);
  check(expectOk(['load.mjs', 'with'], 'load.mjs with the driver').trim() === 'ok', 'load.mjs');
  check(expectOk(['load.cjs', 'with'], 'load.cjs with the driver').trim() === 'ok', 'load.cjs');
  step('passed');
} finally {
  if (process.env.KEEP_PACKAGE_TEST) console.log(`package test: kept ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
}
