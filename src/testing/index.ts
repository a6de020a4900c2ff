/**
 * Testing helpers: the conformance suite every store must pass, and given / when / then
 * scenarios for handlers and projections.
 *
 * @packageDocumentation
 */
export {
  AppSpecification,
  type AppSpecificationOptions,
  type ThenStep,
  type WhenStep,
} from './app-specification';
export {
  type ConformanceStoreOptions,
  type ConformanceTestApi,
  replayAll,
  runStoreConformance,
  type StoreUnderTest,
} from './conformance';
export { fixtures } from './fixtures';
