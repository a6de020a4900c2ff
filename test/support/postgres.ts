import { NO_POSTGRES, type PostgresServer, startPostgres } from './postgres-cluster';

/*
 * The PostgreSQL suites' server: the cluster code is in ./postgres-cluster (no jest, so that the
 * benchmark shares it); this module adds the jest hooks.
 */
export * from './postgres-cluster';

/** For a test file: the server is started before its tests and stopped after them. */
export function usePostgres(options: { local?: boolean } = {}): () => PostgresServer {
  let server: PostgresServer | null = null;
  beforeAll(async () => {
    server = await startPostgres(options);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  }, 60_000);
  return () => {
    if (server === null) throw new Error(NO_POSTGRES);
    return server;
  };
}
