import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { root } from './helpers';

/** Runs `examples/kv-server/bench.ts` from the sources; resolves with its exit code and output. */
async function bench(args: readonly string[]): Promise<{ code: number; out: string }> {
  const script = [
    '-r',
    path.join(root, 'test/support/register.js'),
    path.join(root, 'examples/kv-server/bench.ts'),
  ];
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...script, ...args], {
      cwd: root,
      timeout: 120_000,
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** The kv-server comparison (npm run kv-server:bench) measures, on a small run, what its table says. */
describe('kv-server bench', () => {
  it('prints requests/s and the CPU per request of the kv-server and of the bare Node floor', async () => {
    const { code, out } = await bench([
      '--no-redis',
      '--appendfsync',
      'everysec',
      '--tests',
      'set',
      '--pipeline',
      '1',
      '-n',
      '20000',
      '-c',
      '10',
      '--warmup',
      '0',
      '--rounds',
      '1',
    ]);
    expect(code).toBe(0);
    // appendfsync, -P, test, kv-server "rps (cpu)", redis "-", no ratio, floor "rps (cpu)".
    const row = out.match(/^everysec\s+1\s+SET\s+(\d+) \((\d+\.\d)\)\s+-\s+(\d+) \((\d+\.\d)\)$/m);
    expect(row).not.toBeNull();
    const [, ours, oursCpu, floor, floorCpu] = row!.map(Number);
    expect(ours).toBeGreaterThan(0);
    expect(floor).toBeGreaterThan(0);
    // A request costs microseconds of CPU, not 0 (nothing read) nor thousands (a wrong /proc field,
    // such as a memory size, or ticks taken for seconds).
    for (const cpu of [oursCpu, floorCpu]) {
      expect(cpu).toBeGreaterThanOrEqual(0.5);
      expect(cpu).toBeLessThanOrEqual(1000);
    }
  }, 150_000);

  it('refuses a malformed --cpus with a message and a non-zero exit', async () => {
    const { code, out } = await bench(['--no-redis', '--cpus', 'zero']);
    expect(code).not.toBe(0);
    expect(out).toContain('--cpus wants two CPU numbers, as 0,1 (got zero)');
  });
});
