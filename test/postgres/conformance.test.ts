import type { FsyncPolicy } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { runStoreConformance } from 'appendonly/testing';
import { usePostgres } from '../support/postgres';

/** The conformance suite on every policy, each test on its own log of one database per policy. */
describe('PostgresStore', () => {
  const server = usePostgres();
  let n = 0;
  for (const policy of ['always', 'everysec', 'no'] as FsyncPolicy[]) {
    describe(policy, () => {
      let url = '';
      beforeAll(async () => {
        url = await server().createDatabase();
      });
      runStoreConformance(`PostgresStore ${policy}`, () => {
        const log = `conformance-${++n}`;
        return { open: (o) => new PostgresStore({ connectionString: url, log, appendfsync: policy, ...o }) };
      });
    });
  }
});
