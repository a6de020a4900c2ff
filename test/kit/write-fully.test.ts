import * as fs from 'node:fs';
import * as path from 'node:path';
import { type PositionalWrite, type WriteProgress, writeFully } from '../../src/kit/index';
import { tempDir } from '../support/helpers';

describe('kit: writeFully', () => {
  let cleanup: () => void;
  let file: string;
  let fd: number;
  beforeEach(() => {
    const t = tempDir('kit');
    cleanup = t.cleanup;
    file = path.join(t.dir, 'f');
    fd = fs.openSync(file, 'w+');
  });
  afterEach(() => {
    fs.closeSync(fd);
    cleanup();
  });

  it('loops over short writes until every byte is in the file, sync or async', async () => {
    // given: writes that take at most 3 bytes a call
    const short: PositionalWrite = (f, b, o, l, p) => fs.writeSync(f, b, o, Math.min(l, 3), p);
    const shortAsync: PositionalWrite = async (f, b, o, l, p) => short(f, b, o, l, p);
    // when
    await writeFully(short, fd, Buffer.from('hello, world'), 0);
    await writeFully(shortAsync, fd, Buffer.from('!!'), 12);
    // then
    expect(fs.readFileSync(file, 'utf8')).toBe('hello, world!!');
  });

  it('fails as ENOSPC when a write takes nothing, saying how much reached the file', async () => {
    // given: a disk that fills after 4 bytes
    let room = 4;
    const filling: PositionalWrite = (f, b, o, l, p) => {
      const n = Math.min(l, room, 3);
      room -= n;
      return n === 0 ? 0 : fs.writeSync(f, b, o, n, p);
    };
    const progress: WriteProgress = { done: 0 };
    // when / then
    await expect(writeFully(filling, fd, Buffer.from('0123456789'), 0, progress)).rejects.toMatchObject({
      code: 'ENOSPC',
    });
    expect(progress.done).toBe(4);
    expect(fs.readFileSync(file, 'utf8')).toBe('0123');
  });
});
