import {
  type Attributes,
  type Context,
  context,
  createNoopMeter,
  type Meter,
  metrics,
  propagation,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type {
  AppliedEvent,
  CommandTrace,
  CompactionTrace,
  ConsumeTrace,
  EventMetadata,
  ReplayTrace,
  Telemetry,
  TelemetrySource,
} from '../../src/index';
import { OtelCommandTrace } from './command-trace';
import { type Instruments, makeInstruments } from './instruments';

/** The instrumentation scope's name: what a backend shows as the spans' and metrics' source. */
export const INSTRUMENTATION_NAME = 'appendonly';

/** The options of {@link openTelemetry}. */
export interface OpenTelemetryOptions {
  /** The tracer; default: the global provider's `appendonly` tracer. */
  readonly tracer?: Tracer;
  /** The meter; default: the global provider's `appendonly` meter, as registered when the app opens. */
  readonly meter?: Meter;
  /**
   * Log the command's trace context in its metadata (`traceparent`, `tracestate`, the W3C
   * names, through the registered propagator), so that consumers and readers of the log can
   * continue the trace. Default true. The caller's own keys of those names win.
   */
  readonly propagate?: boolean;
}

/** The global provider's delegate while no SDK is registered. */
const NOOP_TRACER_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Telemetry through `@opentelemetry/api` only (an optional peer; the application registers the
 * SDK and exporters it wants): for `createApp({ telemetry: openTelemetry() })`.
 *
 * - a span `execute <Command>` per command, in the caller's context, with child spans `decide`,
 *   `apply` and `append` (until durable) and the attributes `appendonly.command`,
 *   `appendonly.seq.first`, `appendonly.seq.last`, `appendonly.events`, `appendonly.decisions`,
 *   `appendonly.outcome`; spans `appendonly.replay` and `appendonly.compaction`;
 * - the metrics of {@link Instruments};
 * - the trace context logged in the command's metadata (see `propagate`).
 *
 * While no SDK is registered (and no tracer or meter is given) a command costs one comparison:
 * nothing is created, and nothing is added to its metadata.
 */
export function openTelemetry(options: OpenTelemetryOptions = {}): Telemetry {
  return new OpenTelemetryObserver(options);
}

class OpenTelemetryObserver implements Telemetry {
  private readonly tracer: Tracer;
  /** The global provider when no tracer was given: checked per command for a registered SDK. */
  private readonly provider: ProxyTracerProvider | null;
  private readonly propagate: boolean;
  private instruments: Instruments | null = null;
  private source: TelemetrySource | null = null;
  private lastReplayRate = -1;
  private readonly observe = (r: { observe(value: number, attributes?: Attributes): void }) => {
    for (const c of this.source?.consumers() ?? []) r.observe(c.lag, { 'appendonly.consumer': c.name });
  };
  private readonly observeRate = (r: { observe(value: number): void }) => {
    if (this.lastReplayRate >= 0) r.observe(this.lastReplayRate);
  };

  constructor(private readonly options: OpenTelemetryOptions) {
    this.tracer = options.tracer ?? trace.getTracer(INSTRUMENTATION_NAME);
    const global = trace.getTracerProvider();
    this.provider = options.tracer === undefined && global instanceof ProxyTracerProvider ? global : null;
    this.propagate = options.propagate ?? true;
    // Metrics have no proxy in the API: a meter taken before the SDK is registered stays a no-op.
    // Taken here and again when the app opens (attach), whichever sees the SDK.
    this.meter();
  }

  command(type: string, metadata: EventMetadata | undefined): CommandTrace | undefined {
    const tracing = this.provider === null || this.provider.getDelegate() !== NOOP_TRACER_PROVIDER;
    const instruments = this.instruments;
    if (!tracing)
      return instruments === null
        ? undefined
        : new OtelCommandTrace(type, metadata, null, null, null, instruments);
    const parent = context.active();
    const span = this.tracer.startSpan(
      `execute ${type}`,
      { kind: SpanKind.INTERNAL, attributes: { 'appendonly.command': type } },
      parent,
    );
    if (!span.isRecording()) {
      span.end();
      return instruments === null
        ? undefined
        : new OtelCommandTrace(type, metadata, null, null, null, instruments);
    }
    const ctx = trace.setSpan(parent, span);
    return new OtelCommandTrace(type, this.withContext(ctx, metadata), this.tracer, span, ctx, instruments);
  }

  replay(kind: 'load' | 'catch-up'): ReplayTrace | undefined {
    const op = this.operation('appendonly.replay', { 'appendonly.replay': kind });
    if (op === undefined) return undefined;
    return {
      end: (result) => {
        const seconds = op.seconds();
        if ('error' in result) op.failed(result.error);
        else {
          if (kind === 'load')
            this.lastReplayRate = seconds > 0 ? (result.groups + result.entries) / seconds : 0;
          op.done({ 'appendonly.groups': result.groups, 'appendonly.entries': result.entries });
        }
        this.instruments?.replayDuration.record(seconds, { 'appendonly.replay': kind });
      },
    };
  }

  consume(consumer: string, event: AppliedEvent): ConsumeTrace | undefined {
    if (this.provider !== null && this.provider.getDelegate() === NOOP_TRACER_PROVIDER) return undefined;
    // The command's context, as logged with the event (a consumer may run long after, in
    // another process): the handling continues its trace.
    const metadata = event.metadata as Record<string, unknown> | undefined;
    const parent =
      metadata !== undefined && typeof metadata.traceparent === 'string'
        ? propagation.extract(context.active(), metadata)
        : context.active();
    const span = this.tracer.startSpan(
      `consume ${consumer}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'appendonly.consumer': consumer,
          'appendonly.event': event.event.type,
          'appendonly.seq': event.seq,
          'appendonly.event.id': event.id,
        },
      },
      parent,
    );
    if (!span.isRecording()) {
      span.end();
      return undefined;
    }
    const ctx = trace.setSpan(parent, span);
    return {
      run: (fn) => context.with(ctx, fn),
      end: (error) => {
        if (error === undefined) span.end();
        else failSpan(span, error);
      },
    };
  }

  compaction(): CompactionTrace | undefined {
    const op = this.operation('appendonly.compaction', {});
    if (op === undefined) return undefined;
    return {
      end: (result) => {
        const seconds = op.seconds();
        if ('error' in result) op.failed(result.error);
        else op.done({ 'appendonly.seq': result.seq, 'appendonly.keys': result.keys });
        this.instruments?.compactionDuration.record(seconds);
      },
    };
  }

  /**
   * A replay's or a compaction's span and clock; undefined when neither a tracer records nor a
   * meter listens (nothing to pay for).
   */
  private operation(name: string, attributes: Attributes) {
    const span = this.tracer.startSpan(name, { attributes });
    const recording = span.isRecording();
    if (!recording) span.end();
    if (!recording && this.instruments === null) return undefined;
    const started = performance.now();
    return {
      seconds: () => (performance.now() - started) / 1000,
      failed: (error: unknown) => {
        if (recording) failSpan(span, error);
      },
      done: (result: Attributes) => {
        if (!recording) return;
        span.setAttributes(result);
        span.end();
      },
    };
  }

  fsync(seconds: number): void {
    this.instruments?.fsyncDuration.record(seconds);
  }

  attach(source: TelemetrySource): void {
    this.source = source;
    this.meter();
  }

  detach(): void {
    const m = this.instruments;
    if (m !== null) {
      m.consumerLag.removeCallback(this.observe);
      m.replayRate.removeCallback(this.observeRate);
    }
    this.source = null;
  }

  /** Makes the instruments once a meter that records is there. */
  private meter(): void {
    if (this.instruments !== null) return;
    const meter = this.options.meter ?? metrics.getMeter(INSTRUMENTATION_NAME);
    if (meter === createNoopMeter()) return;
    const m = makeInstruments(meter);
    m.consumerLag.addCallback(this.observe);
    m.replayRate.addCallback(this.observeRate);
    this.instruments = m;
  }

  /** The metadata with the context's trace headers, unless the caller set them. */
  private withContext(ctx: Context, metadata: EventMetadata | undefined) {
    if (!this.propagate) return metadata;
    const carrier: Record<string, string> = {};
    propagation.inject(ctx, carrier);
    if (Object.keys(carrier).length === 0) return metadata;
    return { ...carrier, ...metadata };
  }
}

function failSpan(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
  span.end();
}
