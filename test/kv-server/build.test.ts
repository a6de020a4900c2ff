import { execFile, spawn } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort, redisCli, root, sleep } from './helpers';

/** What `npm run kv-server` runs: the compiled server, resolving `appendonly` through the package's exports. */
describe('the compiled kv-server (npm run kv-server)', () => {
  it('builds, starts, prints where it listens and where the data is, serves redis-cli, and stops on SHUTDOWN', async () => {
    await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root });
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [path.join(root, 'dist/examples/kv-server/main.js'), '--port', String(port), '--store', 'memory'],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      for (let i = 0; i < 300 && !out.includes('Ready to accept connections'); i++) await sleep(20);
      expect(out).toContain(
        `kv-server listening on 127.0.0.1:${port} (RESP2); data in memory only (nothing is persisted)`,
      );
      expect(await redisCli(port, ['SET', 'a', '1'])).toBe('OK\n');
      expect(await redisCli(port, ['GET', 'a'])).toBe('1\n');
      await redisCli(port, ['SHUTDOWN']).catch(() => '');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
