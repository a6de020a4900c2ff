// An `--app` module for the CLI tests: the fixtures' handlers with changed projections (each
// `Counted` counts tenfold), declared as projections version 2.
import 'reflect-metadata';
import { On, Projection, type ProjectionState } from 'appendonly';
import { fixtures } from 'appendonly/testing';

@Projection()
class TenfoldCounters {
  @On(fixtures.Counted)
  counted(e: typeof fixtures.Counted.Event, kv: ProjectionState) {
    kv.set(e.data.key, ((kv.get(e.data.key) as number | undefined) ?? 0) + 10 * e.data.by);
  }
}

export const handlers = fixtures.conformanceClasses.handlers;
export const projections = [TenfoldCounters];
export const projectionsVersion = 2;
