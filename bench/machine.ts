import { execFileSync } from 'node:child_process';
import * as os from 'node:os';

/** What the figures were measured on: they read as ratios, but the machine still matters. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly platform: string;
  /** The file system and device behind the temp dir, where the stores write in the benchmarks. */
  readonly disk: string;
  readonly date: string;
  /** The 1-minute load average when the run started: other work on the machine skews ratios. */
  readonly loadAverage: number;
}

/** Describes this machine. */
export function describeMachine(): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    disk: diskOf(os.tmpdir()),
    date: new Date().toISOString(),
    loadAverage: Math.round(os.loadavg()[0] * 100) / 100,
  };
}

function diskOf(dir: string): string {
  try {
    const out = execFileSync('df', ['-hT', dir], { encoding: 'utf8' }).trim().split('\n')[1] ?? '';
    const [device, type, size] = out.split(/\s+/);
    return `${device} (${type}, ${size})`;
  } catch {
    return 'unknown';
  }
}
