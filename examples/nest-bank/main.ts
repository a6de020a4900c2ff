import 'reflect-metadata';
import { createNestBank } from './app.module';

/**
 * The bank over HTTP on NestJS: `npm run nest-bank`, then
 * `curl -X POST localhost:3000/accounts/alice/deposit -H 'content-type: application/json' -d '{"amount":10}'`.
 * `--port` (or PORT, default 3000; 0 picks a free one) and `--data` (or APPENDONLY_DATA, default
 * ./data-nest) configure it. It listens on 127.0.0.1 only.
 */
async function main(): Promise<void> {
  const dataDir = argValue('--data') ?? process.env.APPENDONLY_DATA ?? './data-nest';
  const port = Number(argValue('--port') ?? process.env.PORT ?? 3000);
  const app = await createNestBank({ dataDir });
  await app.listen(port, '127.0.0.1');
  process.stdout.write(`LISTENING ${await app.getUrl()}\n`);
}

function argValue(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

main().catch((err: unknown) => {
  process.stderr.write(`nest-bank: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
