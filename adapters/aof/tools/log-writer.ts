import * as fs from 'node:fs';
import type { EventGroup, JsonValue } from '../../../src/index';
import type { LogDir } from '../log-dir';
import type { ManifestEntry } from '../manifest';
import { encodeBaseEntry, encodeGroup } from '../record-codec';
import { RespEncoder } from '../resp';
import { fsyncFile } from './durable';
import { logDirFor } from './log-files';

/** Bytes the encoder holds before they are written out. */
const FLUSH_AT = 256 * 1024;

/**
 * Writes a new AOF log from a log read elsewhere (`appendonly convert`): a base holding the
 * snapshot, then one incr file holding the commands, with a `#TS` wherever the second changes.
 * The records are the store's own encoding (a base entry as a compaction writes it, a command
 * as an append does), the file names the ones LogDir gives a store's first base and incr file,
 * and the manifest is written last, through LogDir's atomic replace: until `close` has written
 * it, the folder holds no log a store would load.
 */
export class AofLogWriter {
  private readonly dir: LogDir;
  private readonly enc = new RespEncoder();
  private base: ManifestEntry | null = null;
  private incr: { fd: number; entry: ManifestEntry } | null = null;
  private lastTs = -1;

  /** Writes into `<dataDir>/appendonlydir` (the store's defaults), creating the folders. */
  constructor(dataDir: string) {
    this.dir = logDirFor(dataDir);
    fs.mkdirSync(this.dir.path, { recursive: true, mode: 0o700 });
  }

  /** The snapshot: every key up to `seq`, its version on the manifest's base line. Before any command. */
  async snapshot(seq: number, entries: Map<string, JsonValue>, projectionsVersion?: string): Promise<void> {
    const next = this.dir.nextBase(seq);
    const base = projectionsVersion === undefined ? next : { ...next, projectionsVersion };
    this.base = base;
    const fd = fs.openSync(this.dir.file(base.name), 'w', 0o600);
    try {
      for (const [key, value] of entries) {
        encodeBaseEntry(this.enc, key, value);
        if (this.enc.length >= FLUSH_AT) this.flush(fd);
      }
      this.flush(fd);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** One command, after the previous one. */
  async group(g: EventGroup): Promise<void> {
    if (this.incr === null) {
      const entry = this.dir.nextIncr(g.seq);
      this.incr = { fd: fs.openSync(this.dir.file(entry.name), 'w', 0o600), entry };
    }
    const ts = g.time > 0 ? Math.floor(g.time / 1000) : -1;
    encodeGroup(this.enc, g, ts !== this.lastTs ? ts : -1);
    if (ts >= 0) this.lastTs = ts;
    if (this.enc.length >= FLUSH_AT) this.flush(this.incr.fd);
  }

  /** Makes the files durable, then writes the manifest that names them. */
  async close(): Promise<void> {
    let incr: ManifestEntry;
    if (this.incr !== null) {
      this.flush(this.incr.fd);
      fs.fsyncSync(this.incr.fd);
      fs.closeSync(this.incr.fd);
      incr = this.incr.entry;
    } else {
      // An empty incr file continues the base, as AofStore leaves one after a compaction.
      incr = this.dir.nextIncr((this.base?.lastSeq ?? 0) + 1);
      fs.closeSync(fs.openSync(this.dir.file(incr.name), 'w', 0o600));
      fsyncFile(this.dir.file(incr.name));
    }
    await this.dir.persist({ base: this.base, incrs: [incr], history: [] });
  }

  /** Gives up: removes the log folder and what was written into it. */
  async abort(): Promise<void> {
    if (this.incr !== null) fs.closeSync(this.incr.fd);
    fs.rmSync(this.dir.path, { recursive: true, force: true });
  }

  private flush(fd: number): void {
    const bytes = this.enc.bytes();
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    this.enc.reset();
  }
}
