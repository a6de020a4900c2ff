import * as path from 'node:path';
import { backups, cli, filesOf, smallLog, tempDir, WRITERS } from './helpers';

/*
 * Every command that writes a log takes -y, --yes alike. Without it and without a terminal
 * nobody can answer its question, so it refuses (exit 2, naming --yes) and writes nothing; with
 * it, it does its work. What they ask on a terminal: tty.test.ts.
 */

describe('commands that write a log, without a terminal', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it.each(WRITERS)(
    '%s: refused without --yes, nothing written; done with --yes or -y',
    async (name, args, prepare) => {
      for (const flag of ['--yes', '-y']) {
        const data = path.join(dir, flag);
        await smallLog(data);
        prepare(data);
        const before = filesOf(data);
        const refused = cli(args(data));
        expect(refused.status).toBe(2);
        expect(refused.stderr).toBe(
          `appendonly: ${name}: not a terminal, cannot ask; pass --yes to ${name === 'check --fix' ? 'cut' : name} without asking\n`,
        );
        expect(filesOf(data)).toEqual(before);
        const done = cli([...args(data), flag]);
        expect(done.stderr).not.toContain('unknown option');
        expect(done.status).toBe(0);
        expect(filesOf(data)).not.toEqual(before);
        if (name !== 'convert') expect(backups(data)).toHaveLength(1);
      }
    },
  );
});
