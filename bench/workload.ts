import { fixtures } from 'appendonly/testing';

/**
 * The commands every benchmark runs: the conformance fixtures, so that a benchmark measures the
 * same handlers the tests check. `Put(key, value)` is one built-in SET; `PutMany` one group.
 */
export const { Put, PutMany } = fixtures;

/** The handlers (and the projection) of those commands, for `createApp`. */
export const workload = fixtures.conformanceClasses;
