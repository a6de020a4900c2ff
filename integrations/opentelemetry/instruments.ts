import type { Counter, Histogram, Meter, ObservableGauge } from '@opentelemetry/api';

/** The app's metrics, made once per app on its meter. Durations are in seconds, as OpenTelemetry's conventions ask. */
export interface Instruments {
  /** Commands executed, by `appendonly.command` and `appendonly.outcome` (ok, rejected, failed). */
  readonly commands: Counter;
  /** From `execute` to durable (or refused), by command and outcome. */
  readonly commandDuration: Histogram;
  /** From the store being handed a command's events to their being durable per its policy. */
  readonly appendDuration: Histogram;
  /** The store's own fsyncs of its log (AOF; SQLite under everysec). */
  readonly fsyncDuration: Histogram;
  /** Replays, by `appendonly.replay` (load, catch-up). */
  readonly replayDuration: Histogram;
  /** Commands and snapshot entries per second of the last load. */
  readonly replayRate: ObservableGauge;
  /** Compactions, automatic or asked by `app.compact()`. */
  readonly compactionDuration: Histogram;
  /** Events each consumer has still to handle, by `appendonly.consumer`. */
  readonly consumerLag: ObservableGauge;
}

/** Makes the instruments on `meter`. */
export function makeInstruments(meter: Meter): Instruments {
  const seconds = (name: string, description: string) =>
    meter.createHistogram(name, { unit: 's', description });
  return {
    commands: meter.createCounter('appendonly.commands', { description: 'Commands executed' }),
    commandDuration: seconds('appendonly.command.duration', 'From execute to durable, or refused'),
    appendDuration: seconds('appendonly.append.duration', "The store's append, until durable per its policy"),
    fsyncDuration: seconds('appendonly.fsync.duration', 'An fsync of the log by the store'),
    replayDuration: seconds('appendonly.replay.duration', 'A replay of the log: load, or catch-up'),
    replayRate: meter.createObservableGauge('appendonly.replay.rate', {
      unit: '{record}/s',
      description: 'Commands and snapshot entries per second of the last load',
    }),
    compactionDuration: seconds('appendonly.compaction.duration', 'A compaction of the log'),
    consumerLag: meter.createObservableGauge('appendonly.consumer.lag', {
      unit: '{event}',
      description: 'Durable events a consumer has not handled yet',
    }),
  };
}
