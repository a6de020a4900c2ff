/**
 * appendonly's OpenTelemetry instrumentation: `createApp({ telemetry: openTelemetry() })`.
 * Needs `@opentelemetry/api` (an optional peer of appendonly); the application registers the SDK.
 *
 * @packageDocumentation
 */
import './peers';

export type { Instruments } from './instruments';
export { INSTRUMENTATION_NAME, type OpenTelemetryOptions, openTelemetry } from './open-telemetry';
