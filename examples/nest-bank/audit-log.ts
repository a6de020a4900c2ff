import * as fs from 'node:fs';
import * as path from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { Consumer, On } from 'appendonly';
import { Deposited, Withdrawn } from '../bank/domain';

/** The injection token of the folder the example keeps its files in. */
export const DATA_DIR = Symbol('DATA_DIR');

/**
 * An ordinary Nest service: one line per movement in `audit.log`, fsynced. It is outside the
 * event log, so it is written by a durable consumer (at least once: a line may be written twice
 * after a crash, never skipped; each names its event's id, which tells a repeat apart).
 */
@Injectable()
export class AuditLog {
  private readonly file: string;

  constructor(@Inject(DATA_DIR) dir: string) {
    this.file = path.join(dir, 'audit.log');
  }

  write(line: string): void {
    const fd = fs.openSync(this.file, 'a');
    try {
      fs.writeSync(fd, `${line}\n`);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  lines(): string[] {
    if (!fs.existsSync(this.file)) return [];
    return fs
      .readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((l) => l !== '');
  }
}

/** A consumer built by Nest, so that Nest injects its service. */
@Consumer('audit')
export class AuditTrail {
  constructor(@Inject(AuditLog) private readonly audit: AuditLog) {}

  @On(Deposited)
  deposited(e: typeof Deposited.Event, { seq }: { seq: number }): void {
    this.audit.write(`#${seq} ${e.data.account} +${e.data.amount}`);
  }

  @On(Withdrawn)
  withdrawn(e: typeof Withdrawn.Event, { seq }: { seq: number }): void {
    this.audit.write(`#${seq} ${e.data.account} -${e.data.amount}`);
  }
}
