import 'reflect-metadata';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { type DataPoint, type Histogram, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { type AppliedEvent, createApp, MemoryStore, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { openTelemetry } from 'appendonly/opentelemetry';
import { bank, Deposit, Withdraw } from '../../examples/bank/domain';
import { tempDir } from '../support/helpers';

/** A metric reader collected on demand. */
class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

/** The SDK as an application registers it: spans kept in memory, metrics collected on demand. */
function sdk() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const metric = async (name: string) => {
    const { resourceMetrics } = await reader.collect();
    const all = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
    return all.find((m) => m.descriptor.name === name)?.dataPoints ?? [];
  };
  return { spans, tracerProvider, meterProvider, metric };
}

const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('openTelemetry()', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(() => {
    context.disable();
    propagation.disable();
  });
  beforeEach(() => {
    tmp = tempDir('otel');
  });
  afterEach(() => tmp.cleanup());

  it('traces a command as a span in the caller’s trace, with decide, apply and append, and logs its context', async () => {
    // given: an app on a real AOF log, traced by the SDK's tracer, a consumer reading metadata
    const { spans, tracerProvider } = sdk();
    const tracer = tracerProvider.getTracer('test');
    const app = await createApp({
      ...bank,
      store: new AofStore({ dir: tmp.dir, appendfsync: 'always' }),
      logger: silentLogger,
      telemetry: openTelemetry({ tracer }),
    });
    const seen: AppliedEvent[] = [];
    const sub = await app.subscribe('reader', (e) => {
      seen.push(e);
    });
    // when: a deposit runs inside the caller's span
    const request = tracer.startSpan('POST /deposit');
    await context.with(trace.setSpan(context.active(), request), () =>
      app.execute(new Deposit('alice', 10), { metadata: { correlationId: 'r-1' } }),
    );
    request.end();
    await sub.caughtUp();
    // then: one command span under the request, its three phases under it
    const finished = spans.getFinishedSpans();
    const [command] = byName(finished, 'execute Deposit');
    expect(parentOf(command)).toBe(request.spanContext().spanId);
    expect(command.spanContext().traceId).toBe(request.spanContext().traceId);
    expect(command.attributes).toMatchObject({
      'appendonly.command': 'Deposit',
      'appendonly.seq.first': 1,
      'appendonly.seq.last': 1,
      'appendonly.events': 1,
      'appendonly.decisions': 1,
    });
    for (const phase of ['decide', 'apply', 'append'])
      expect(byName(finished, phase).map(parentOf)).toEqual([command.spanContext().spanId]);
    // ...and the logged metadata carries the command span's context beside the caller's fields
    expect(seen[0].metadata).toEqual({
      correlationId: 'r-1',
      traceparent: `00-${command.spanContext().traceId}-${command.spanContext().spanId}-01`,
    });
    await app.close();
  });

  it('a consumer handling an event, even after a restart, continues the trace of the command that logged it', async () => {
    // given: a command traced by one app, which then closes
    const { spans, tracerProvider } = sdk();
    const telemetry = openTelemetry({ tracer: tracerProvider.getTracer('test') });
    const store = () => new AofStore({ dir: tmp.dir });
    const first = await createApp({ ...bank, store: store(), logger: silentLogger, telemetry });
    await first.execute(new Deposit('fay', 4));
    await first.close();
    const [command] = byName(spans.getFinishedSpans(), 'execute Deposit');
    // when: the next app's consumer reads it from the log; its handler fails once, then not
    const second = await createApp({ ...bank, store: store(), logger: silentLogger, telemetry });
    let calls = 0;
    const sub = await second.subscribe(
      'mailer',
      () => {
        calls++;
        if (calls === 1) throw new Error('smtp down');
      },
      { retryDelayMs: 0 },
    );
    await sub.caughtUp();
    await second.close();
    // then: one consumer span per attempt, each a child of the command's span, the failed one an error
    const handled = byName(spans.getFinishedSpans(), 'consume mailer');
    expect(handled).toHaveLength(2);
    for (const h of handled) {
      expect(h.kind).toBe(SpanKind.CONSUMER);
      expect(h.spanContext().traceId).toBe(command.spanContext().traceId);
      expect(parentOf(h)).toBe(command.spanContext().spanId);
      expect(h.attributes).toMatchObject({
        'appendonly.consumer': 'mailer',
        'appendonly.seq': 1,
        'appendonly.event': 'Deposited',
      });
    }
    expect(handled.map((h) => h.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.UNSET]);
  });

  it('a refused command ends its span as rejected, not as an error; a replay and a compaction have spans', async () => {
    const { spans, tracerProvider } = sdk();
    const telemetry = openTelemetry({ tracer: tracerProvider.getTracer('test') });
    const store = () => new AofStore({ dir: tmp.dir });
    let app = await createApp({ ...bank, store: store(), logger: silentLogger, telemetry });
    await app.execute(new Deposit('bob', 5));
    await expect(app.execute(new Withdraw('bob', 50))).rejects.toThrow(/bob has 5/);
    await app.compact();
    await app.close();
    app = await createApp({ ...bank, store: store(), logger: silentLogger, telemetry });
    await app.close();
    const finished = spans.getFinishedSpans();
    const [refused] = byName(finished, 'execute Withdraw');
    expect(refused.attributes['appendonly.outcome']).toBe('rejected');
    expect(refused.status.code).toBe(0); // UNSET
    expect(refused.events.map((e) => e.name)).toEqual(['rejected']);
    expect(byName(finished, 'appendonly.compaction')[0].attributes).toMatchObject({ 'appendonly.seq': 1 });
    const replays = byName(finished, 'appendonly.replay');
    expect(replays).toHaveLength(2);
    expect(replays[1].attributes).toMatchObject({ 'appendonly.replay': 'load', 'appendonly.entries': 1 });
  });

  it('records commands, append and fsync latency, replay rate, compaction time and consumer lag', async () => {
    // given: an app whose meter is the SDK's, on an AOF log fsynced per command
    const { meterProvider, metric } = sdk();
    const app = await createApp({
      ...bank,
      store: new AofStore({ dir: tmp.dir, appendfsync: 'always' }),
      logger: silentLogger,
      telemetry: openTelemetry({ meter: meterProvider.getMeter('test') }),
    });
    let release: () => void = () => {};
    const blocked = new Promise<void>((r) => {
      release = r;
    });
    await app.subscribe('slow', () => blocked);
    // when: three deposits and a refused withdrawal run, and the log is compacted
    for (let i = 0; i < 3; i++) await app.execute(new Deposit('carol', 1));
    await expect(app.execute(new Withdraw('carol', 99))).rejects.toThrow();
    await app.compact();
    // then: the counts and latencies are there, by command and outcome
    const commands = await metric('appendonly.commands');
    const count = (command: string, outcome: string) =>
      commands.find(
        (p) =>
          p.attributes['appendonly.command'] === command && p.attributes['appendonly.outcome'] === outcome,
      )?.value;
    expect(count('Deposit', 'ok')).toBe(3);
    expect(count('Withdraw', 'rejected')).toBe(1);
    const histogramCount = async (name: string) =>
      ((await metric(name)) as DataPoint<Histogram>[]).reduce((n, p) => n + p.value.count, 0);
    expect(await histogramCount('appendonly.command.duration')).toBe(4);
    expect(await histogramCount('appendonly.append.duration')).toBe(3);
    expect(await histogramCount('appendonly.fsync.duration')).toBeGreaterThanOrEqual(3);
    expect(await histogramCount('appendonly.replay.duration')).toBe(1);
    expect(await histogramCount('appendonly.compaction.duration')).toBe(1);
    expect((await metric('appendonly.replay.rate')).length).toBe(1);
    // ...and the consumer stuck on its first event lags by all three (none handled yet)
    const lag = await metric('appendonly.consumer.lag');
    expect(lag.map((p) => [p.attributes['appendonly.consumer'], p.value])).toEqual([['slow', 3]]);
    release();
    await app.close();
  });

  it('an automatic compaction is traced and timed too, not only app.compact()', async () => {
    // given: a log that rewrites itself once it doubles past 4 KB
    const { spans, tracerProvider, meterProvider, metric } = sdk();
    const app = await createApp({
      ...bank,
      store: new AofStore({ dir: tmp.dir, autoRewritePercentage: 100, autoRewriteMinSize: 4096 }),
      logger: silentLogger,
      telemetry: openTelemetry({
        tracer: tracerProvider.getTracer('test'),
        meter: meterProvider.getMeter('test'),
      }),
    });
    // when: commands grow it until the store has rewritten it by itself
    for (let i = 0; i < 400 && (app.stats().store?.rewrites ?? 0) === 0; i++)
      await app.execute(new Deposit(`acct-${i % 7}`, 1));
    for (let i = 0; i < 200 && app.stats().store?.rewriteInProgress === true; i++)
      await new Promise((r) => setTimeout(r, 10));
    const rewrites = app.stats().store?.rewrites ?? 0;
    await app.close();
    // then: each rewrite is a span and a duration, though nobody called compact()
    expect(rewrites).toBeGreaterThan(0);
    expect(byName(spans.getFinishedSpans(), 'appendonly.compaction')).toHaveLength(rewrites);
    const durations = (await metric('appendonly.compaction.duration')) as DataPoint<Histogram>[];
    expect(durations.reduce((n, p) => n + p.value.count, 0)).toBe(rewrites);
  });

  it('with no SDK registered, costs nothing: no trace, nothing added to the metadata', async () => {
    // given: the global API with no tracer or meter provider registered
    const telemetry = openTelemetry();
    // then: the app is not asked to trace its commands...
    expect(telemetry.command?.('Deposit', undefined)).toBeUndefined();
    // ...and what it logs is the caller's metadata alone
    const app = await createApp({ ...bank, store: new MemoryStore(), logger: silentLogger, telemetry });
    const seen: AppliedEvent[] = [];
    const sub = await app.subscribe('reader', (e) => {
      seen.push(e);
    });
    await app.execute(new Deposit('dan', 1), { metadata: { correlationId: 'r-2' } });
    await sub.caughtUp();
    expect(seen[0].metadata).toEqual({ correlationId: 'r-2' });
    await app.close();
  });

  it('follows an SDK registered globally after it was made', async () => {
    // given: openTelemetry() made while nothing was registered, then the SDK registered
    const telemetry = openTelemetry();
    const { spans, tracerProvider } = sdk();
    trace.setGlobalTracerProvider(tracerProvider);
    try {
      const app = await createApp({ ...bank, store: new MemoryStore(), logger: silentLogger, telemetry });
      // when: a command runs
      await app.execute(new Deposit('erin', 3));
      await app.close();
      // then: it was traced by the global provider
      expect(byName(spans.getFinishedSpans(), 'execute Deposit')).toHaveLength(1);
    } finally {
      trace.disable();
    }
  });
});
