import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { createApp, type JsonValue, silentLogger } from 'appendonly';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { modelState } from '../support/crash-workload';

const root = path.resolve(__dirname, '../..');

/** Runs the crash workload under `always` until it has `acks` acknowledgements, then SIGKILLs it: the WAL keeps its frames. */
async function killAfter(file: string, acks: number): Promise<number> {
  const spec = {
    module: 'adapters/sqlite-wal/index.ts',
    exportName: 'SqliteWalStore',
    options: { file, appendfsync: 'always' },
    inFlight: 1,
    compactEvery: 0,
  };
  const child = spawn(
    process.execPath,
    ['-r', './test/support/register.js', 'test/support/crash-child.ts', JSON.stringify(spec)],
    { cwd: root },
  );
  let out = '';
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      seen = out.split('\n').filter((l) => l.startsWith('A ')).length;
      if (seen >= acks) {
        child.kill('SIGKILL');
        resolve();
      }
    });
    child.on('exit', (code) => (code !== null ? reject(new Error(`child exited ${code}`)) : undefined));
  });
  await new Promise((r) => child.on('close', r));
  return seen;
}

describe('torn WAL: SqliteWalStore', () => {
  it('reopens to exactly a complete prefix when the WAL is cut at any offset inside its last frames', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-torn-wal-'));
    try {
      const file = path.join(dir, 'src.db');
      const acked = await killAfter(file, 40);
      const wal = fs.readFileSync(`${file}-wal`);
      const db = fs.readFileSync(file);
      expect(wal.length).toBeGreaterThan(4 * (24 + 4096)); // the kill left committed frames in the WAL
      // The last frames: every byte offset around the last three frame boundaries, and a stride through them.
      const frame = 24 + 4096;
      const from = Math.max(32, wal.length - 3 * frame);
      const cuts = new Set<number>();
      for (let off = from; off <= wal.length; off += 61) cuts.add(off);
      for (let k = 0; k <= 3; k++) for (let d = -2; d <= 2; d++) cuts.add(wal.length - k * frame + d);
      let previous = Number.POSITIVE_INFINITY;
      let whole = 0;
      let checked = 0;
      for (const cut of [...cuts].filter((c) => c >= 32 && c <= wal.length).sort((a, b) => b - a)) {
        const copy = path.join(dir, `cut-${cut}.db`);
        fs.writeFileSync(copy, db);
        fs.writeFileSync(`${copy}-wal`, wal.subarray(0, cut));
        const app = await createApp({
          store: new SqliteWalStore({ file: copy, appendfsync: 'no' }),
          logger: silentLogger,
        });
        const state = Object.fromEntries(app.state.entries()) as Record<string, JsonValue>;
        await app.close();
        const n = state.last === undefined ? 0 : Number(state.last) + 1;
        expect(state).toEqual(modelState(n));
        expect(n).toBeLessThanOrEqual(previous); // a shorter WAL never gives a longer history
        previous = n;
        checked++;
        if (cut === wal.length) {
          expect(n).toBeGreaterThanOrEqual(acked);
          whole = n;
        }
        for (const f of fs.readdirSync(dir)) if (f.startsWith(`cut-${cut}.db`)) fs.rmSync(path.join(dir, f));
      }
      expect(checked).toBeGreaterThan(100);
      // Cutting frames did remove commits: fewer than the whole WAL held (which may be more than
      // were acknowledged when the kill landed: a busy machine lets the child run ahead of it).
      expect(previous).toBeLessThan(whole);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
