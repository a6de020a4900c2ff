import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { StoreLockedError } from 'appendonly';
import { acquireDirLock } from '../../adapters/common/dir-lock';

/*
 * The pid-file lock that adapters/common/dir-lock falls back to off Linux, forced here with its
 * 'pid-file' kind. Real processes race for a folder whose LOCK names a dead process: exactly
 * one of them may get it.
 */

const RACERS = 4;
const ROUNDS = 40;

/** The PID of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  if (r.pid === undefined || r.status !== 0) throw new Error('could not run a short-lived node');
  return r.pid;
}

describe('pid-file lock', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-pidlock-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('refuses a live holder, takes over a dead one, and is free again after release', async () => {
    const dir = path.join(root, 'd');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'LOCK'), String(process.ppid));
    await expect(acquireDirLock(dir, 'store', 'pid-file')).rejects.toThrow(
      new RegExp(`locked by process ${process.ppid}:`),
    );
    fs.writeFileSync(path.join(dir, 'LOCK'), String(deadPid()));
    const lock = await acquireDirLock(dir, 'store', 'pid-file');
    expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).toBe(String(process.pid));
    await expect(acquireDirLock(dir, 'store', 'pid-file')).rejects.toThrow(StoreLockedError);
    await lock.release();
    expect(fs.readdirSync(dir)).toEqual([]);
    const again = await acquireDirLock(dir, 'store', 'pid-file');
    await again.release();
  });

  it('takes over a claim left by a taker that died before it replaced the dead LOCK', async () => {
    const dir = path.join(root, 'd');
    fs.mkdirSync(dir);
    const lockFile = path.join(dir, 'LOCK');
    fs.writeFileSync(lockFile, String(deadPid()));
    const ino = fs.statSync(lockFile, { bigint: true }).ino;
    fs.writeFileSync(`${lockFile}.takeover-${ino}`, String(deadPid()));
    const lock = await acquireDirLock(dir, 'store', 'pid-file');
    expect(fs.readFileSync(lockFile, 'utf8')).toBe(String(process.pid));
    expect(fs.readdirSync(dir)).toEqual(['LOCK']);
    await lock.release();
  });

  it(`${RACERS} processes racing for a dead holder's lock: exactly one wins, ${ROUNDS} times over`, async () => {
    const racers: { child: ChildProcessWithoutNullStreams; lines: string[] }[] = [];
    try {
      for (let i = 0; i < RACERS; i++) {
        const child = spawn(
          process.execPath,
          [
            '-r',
            path.join(__dirname, '../support/register.js'),
            path.join(__dirname, 'child/pid-lock-racer.ts'),
          ],
          { stdio: 'pipe' },
        );
        const racer = { child, lines: [] as string[] };
        let buf = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          buf += d;
          const parts = buf.split('\n');
          buf = parts.pop() ?? '';
          racer.lines.push(...parts);
        });
        racers.push(racer);
      }
      const answers = async (round: number): Promise<string[]> => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const got = racers.map((r) => r.lines.find((l) => l.split(' ')[1] === String(round)));
          if (got.every((l) => l !== undefined)) return got as string[];
          if (Date.now() > deadline || racers.some((r) => r.child.exitCode !== null))
            throw new Error(`round ${round}: the racers answered ${JSON.stringify(got)}`);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      // Warm up (the first round also waits for the children to load the sources).
      const dead = deadPid();
      const failures: string[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const dir = path.join(root, `r${round}`);
        fs.mkdirSync(dir);
        fs.writeFileSync(path.join(dir, 'LOCK'), String(dead));
        const startAt = Date.now() + (round === 0 ? 3000 : 40);
        for (const r of racers) r.child.stdin.write(`go ${round} ${dir} ${startAt}\n`);
        const got = await answers(round);
        const won = got.filter((l) => l.startsWith('won '));
        const others = got.filter((l) => !l.startsWith('won ') && !l.startsWith('locked '));
        expect(others).toEqual([]);
        if (won.length !== 1) failures.push(`round ${round}: ${JSON.stringify(got)}`);
        else {
          // The winner's PID is in LOCK, and nothing else is left in the folder.
          expect(fs.readFileSync(path.join(dir, 'LOCK'), 'utf8')).toBe(won[0].split(' ')[2]);
          expect(fs.readdirSync(dir)).toEqual(['LOCK']);
        }
      }
      expect(failures).toEqual([]);
    } finally {
      for (const r of racers) r.child.kill('SIGKILL');
    }
  }, 120_000);
});
