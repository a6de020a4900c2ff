import { spawn } from 'node:child_process';
import { aofApp, Put, ROOT, tempDir } from './helpers';

describe('appendonly cat into a reader that stops early (| head)', () => {
  it('ends quietly with exit 0', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const app = await aofApp({ dir, appendfsync: 'no' });
      for (let i = 0; i < 3000; i++) await app.execute(new Put(`k${i}`, 'x'.repeat(100)));
      await app.close();
      const child = spawn(process.execPath, ['-r', './test/support/register.js', 'cli/main.ts', 'cat', dir], {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      // Read the first line only, then close the pipe, as `head -1` does.
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      child.stdout.destroy();
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(stderr).toBe('');
      expect(code).toBe(0);
    } finally {
      cleanup();
    }
  });
});
