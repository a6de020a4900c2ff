import { type Context, context, type Span, SpanStatusCode, type Tracer } from '@opentelemetry/api';
import type { CommandTrace, EventMetadata } from '../../src/index';
import type { Instruments } from './instruments';

/**
 * One command's span, `execute <Command>`, with a child span per phase: `decide` (the handler;
 * one per decision, so a command decided again after a conflict shows each), `apply` (events
 * into the state, with their seqs) and `append` (handed to the store until durable per its
 * policy). Its metrics are recorded when it ends. Created only when a tracer records or a meter
 * listens (see `openTelemetry`).
 */
export class OtelCommandTrace implements CommandTrace {
  private phase: Span | null = null;
  private phaseStarted = 0;
  private decisions = 0;
  private firstSeq = 0;
  private lastSeq = 0;
  private events = 0;
  private readonly started: number;

  constructor(
    private readonly type: string,
    readonly metadata: EventMetadata | undefined,
    private readonly tracer: Tracer | null,
    /** The command's span and its context; null when only metrics are recorded. */
    private readonly span: Span | null,
    private readonly ctx: Context | null,
    private readonly instruments: Instruments | null,
  ) {
    this.started = instruments === null ? 0 : performance.now();
  }

  run<T>(fn: () => T): T {
    return this.ctx === null ? fn() : context.with(this.ctx, fn);
  }

  decide(attempt: number): void {
    this.decisions = attempt + 1;
    this.startPhase('decide');
  }

  decided(): void {
    this.startPhase('apply');
  }

  applied(firstSeq: number, lastSeq: number, events: number): void {
    this.firstSeq = firstSeq;
    this.lastSeq = lastSeq;
    this.events = events;
    this.startPhase('append');
    this.phaseStarted = this.instruments === null ? 0 : performance.now();
  }

  appended(): void {}

  durable(): void {
    const appendedAt = this.phaseStarted;
    this.endPhase();
    const span = this.span;
    if (span !== null) {
      span.setAttributes(this.attributes());
      span.end();
    }
    const m = this.instruments;
    if (m !== null) {
      const now = performance.now();
      const attributes = { 'appendonly.command': this.type, 'appendonly.outcome': 'ok' };
      m.commands.add(1, attributes);
      m.commandDuration.record((now - this.started) / 1000, attributes);
      if (appendedAt !== 0) m.appendDuration.record((now - appendedAt) / 1000);
    }
  }

  failed(err: unknown, rejected: boolean): void {
    this.endPhase();
    const outcome = rejected ? 'rejected' : 'failed';
    const span = this.span;
    if (span !== null) {
      span.setAttributes({ ...this.attributes(), 'appendonly.outcome': outcome });
      // A refusal is the command's answer, not a fault of the service: the span stays unset,
      // with the reason as an event; a failure (the log could not be written) is an error.
      if (rejected) span.addEvent('rejected', { 'exception.message': messageOf(err) });
      else {
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
      }
      span.end();
    }
    const m = this.instruments;
    if (m !== null) {
      const attributes = { 'appendonly.command': this.type, 'appendonly.outcome': outcome };
      m.commands.add(1, attributes);
      m.commandDuration.record((performance.now() - this.started) / 1000, attributes);
    }
  }

  private attributes() {
    return {
      'appendonly.decisions': this.decisions,
      ...(this.events > 0
        ? {
            'appendonly.seq.first': this.firstSeq,
            'appendonly.seq.last': this.lastSeq,
            'appendonly.events': this.events,
          }
        : { 'appendonly.events': 0 }),
    };
  }

  private startPhase(name: 'decide' | 'apply' | 'append'): void {
    this.endPhase();
    if (this.tracer === null || this.ctx === null) return;
    this.phase = this.tracer.startSpan(name, undefined, this.ctx);
  }

  private endPhase(): void {
    this.phase?.end();
    this.phase = null;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
