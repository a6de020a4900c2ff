import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeGroup } from '../../adapters/aof/record-codec';
import { RespEncoder } from '../../adapters/aof/resp';
import { SET } from 'appendonly';
import { backups, cli, filesOf, ROOT, smallLog, tempDir, WRITERS } from './helpers';

/*
 * What the tool does on a terminal, under a real pseudo-terminal (util-linux `script`): the
 * progress bar on stderr for long work, and every command that writes a log asking first.
 */

/** Runs the bin under a pty; `input` is typed into it. */
function onTerminal(args: readonly string[], input = ''): { status: number | null; out: string } {
  const command = [process.execPath, '-r', './test/support/register.js', 'cli/main.ts', ...args]
    .map((a) => `'${a.replace(/'/g, `'\\''`)}'`)
    .join(' ');
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: ROOT, encoding: 'utf8', input });
  if (r.error) throw new Error(`script (util-linux) could not run: ${r.error.message}`);
  return { status: r.status, out: r.stdout };
}

/** A log of about `mib` MiB in `dir`: one incr file of SET commands, written with the store's encoder. */
function bigLog(dir: string, mib: number): string {
  const log = path.join(dir, 'appendonlydir');
  fs.mkdirSync(log, { recursive: true });
  const enc = new RespEncoder();
  const value = 'v'.repeat(1000);
  for (let seq = 1; enc.length < mib * 1024 * 1024; seq++)
    encodeGroup(enc, { seq, time: 0, events: [SET(`k${seq}`, value)] }, -1);
  const incr = path.join(log, 'appendonly.aof.1.incr.aof');
  fs.writeFileSync(incr, enc.bytes());
  fs.writeFileSync(
    path.join(log, 'appendonly.aof.manifest'),
    'file appendonly.aof.1.incr.aof seq 1 type i startseq 1\n',
  );
  return incr;
}

describe('on a terminal', () => {
  let dir: string;
  let cleanup: () => void;
  let incr: string;
  beforeAll(() => {
    ({ dir, cleanup } = tempDir());
    incr = bigLog(dir, 9);
  });
  afterAll(() => cleanup());

  it('long work shows a progress bar; without a terminal, plain lines', () => {
    const tty = onTerminal(['check', dir]);
    expect(tty.status).toBe(0);
    expect(tty.out).toMatch(/checking \[[=-]+\] \d+% \| \d+\/\d+ bytes/);
    const plain = cli(['check', dir]);
    // helpers.cli sets APPENDONLY_NO_PROGRESS, which silences it; without it, a pipe gets plain lines.
    expect(plain.stderr).not.toContain('[');
    const r = spawnSync(process.execPath, ['-r', './test/support/register.js', 'cli/main.ts', 'check', dir], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.stderr).toMatch(/^checking: 10% \(\d+\/\d+ bytes\)$/m);
    expect(r.stderr).not.toContain('\x1b');
  });

  it('check --fix asks before it cuts: "n" changes nothing, "y" cuts', () => {
    const whole = fs.readFileSync(incr);
    const torn = '*3\r\n$3\r\nSET\r\n$1\r\nx';
    fs.appendFileSync(incr, torn);
    const no = onTerminal(['check', dir, '--fix'], 'n\n');
    expect(no.out).toContain('Continue? [y/N]');
    expect(no.status).toBe(1);
    expect(fs.statSync(incr).size).toBe(whole.length + torn.length);
    expect(backups(dir)).toEqual([]);
    const yes = onTerminal(['check', dir, '--fix'], 'y\n');
    expect(yes.out).toContain('Continue? [y/N]');
    expect(yes.status).toBe(0);
    expect(fs.readFileSync(incr).equals(whole)).toBe(true);
  });
});

describe('on a terminal, every command that writes a log asks first', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it.each(WRITERS)('%s: "n" changes nothing, "y" does it', async (_name, args, prepare) => {
    await smallLog(dir);
    prepare(dir);
    const before = filesOf(dir);
    const no = onTerminal(args(dir), 'n\n');
    expect(no.out).toMatch(/This will .*Continue\? \[y\/N\]/);
    expect(no.out).toContain('nothing changed');
    expect(no.status).toBe(1);
    expect(filesOf(dir)).toEqual(before);
    const yes = onTerminal(args(dir), 'y\n');
    expect(yes.out).toContain('Continue? [y/N]');
    expect(yes.status).toBe(0);
    expect(filesOf(dir)).not.toEqual(before);
  });
});
