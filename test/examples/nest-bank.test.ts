import 'reflect-metadata';
import * as path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { createApp, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { AppendonlyService } from 'appendonly/nestjs';
import { bank } from '../../examples/bank/domain';
import { createNestBank } from '../../examples/nest-bank/app.module';
import { useChildren } from '../support/child';
import { tempDir } from '../support/helpers';

/** One HTTP call: the status and the parsed JSON body. */
async function call(base: string, method: 'GET' | 'POST', route: string, body?: object) {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & unknown[] };
}

describe('the NestJS bank example (examples/nest-bank)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let nest: INestApplication | undefined;
  beforeEach(() => {
    tmp = tempDir('nest-bank');
  });
  afterEach(async () => {
    await nest?.close();
    nest = undefined;
    tmp.cleanup();
  });

  async function start(): Promise<string> {
    nest = await createNestBank({ dataDir: tmp.dir });
    await nest.listen(0, '127.0.0.1');
    return nest.getUrl();
  }

  it('answers over HTTP: deposits, a refused withdrawal, a transfer, balances', async () => {
    // given: the app listening on a fresh log
    const base = await start();
    // when: money moves over HTTP
    const deposit = await call(base, 'POST', '/accounts/alice/deposit', { amount: 100 });
    const refused = await call(base, 'POST', '/accounts/alice/withdraw', { amount: 500 });
    const transfer = await call(base, 'POST', '/transfers', { from: 'alice', to: 'bob', amount: 30 });
    // then: each command answered with its seq, the refusal as 422 with the handler's reason
    expect(deposit).toEqual({ status: 201, body: { seq: 1, balance: 100 } });
    expect(refused.status).toBe(422);
    expect(refused.body.message).toMatch(/alice has 100, cannot withdraw 500/);
    expect(transfer).toEqual({ status: 201, body: { seqs: [2, 3] } });
    expect((await call(base, 'GET', '/accounts/alice')).body).toEqual({ account: 'alice', balance: 70 });
    expect((await call(base, 'GET', '/accounts/bob')).body).toEqual({ account: 'bob', balance: 30 });
  });

  it('its consumer is built by Nest (its service injected) and writes the audit trail', async () => {
    const base = await start();
    await call(base, 'POST', '/accounts/alice/deposit', { amount: 100 });
    await call(base, 'POST', '/transfers', { from: 'alice', to: 'bob', amount: 30 });
    expect((await call(base, 'GET', '/audit')).body).toEqual(['#1 alice +100', '#2 alice -30', '#3 bob +30']);
  });

  it('closes the store on shutdown, and the next start replays the log', async () => {
    // given: an app that took commands
    let base = await start();
    await call(base, 'POST', '/accounts/alice/deposit', { amount: 100 });
    await call(base, 'POST', '/accounts/alice/withdraw', { amount: 40 });
    const service = nest?.get(AppendonlyService);
    expect(service?.stats().lastSeq).toBe(2);
    // when: Nest closes: onApplicationShutdown closed the store, whose lock is free again
    await nest?.close();
    nest = undefined;
    const plain = await createApp({ ...bank, store: new AofStore({ dir: tmp.dir }), logger: silentLogger });
    expect(plain.state.get('balance:alice')).toBe(60);
    await plain.close();
    // then: a new Nest app replays it; its consumer resumes after what it handled
    base = await start();
    expect((await call(base, 'GET', '/accounts/alice')).body).toEqual({ account: 'alice', balance: 60 });
    await call(base, 'POST', '/accounts/alice/deposit', { amount: 5 });
    expect((await call(base, 'GET', '/audit')).body).toEqual([
      '#1 alice +100',
      '#2 alice -40',
      '#3 alice +5',
    ]);
  });

  describe('as a process', () => {
    const spawn = useChildren(path.join(__dirname, '..', '..', 'examples', 'nest-bank', 'main.ts'));

    it('listens, answers, and on SIGTERM stops with every acknowledged command in the log', async () => {
      // given: main.ts running on a free port
      const child = spawn(['--data', tmp.dir, '--port', '0']);
      const base = (await child.waitFor(/^LISTENING /)).slice('LISTENING '.length);
      // when: it takes a deposit, then gets SIGTERM
      expect((await call(base, 'POST', '/accounts/carol/deposit', { amount: 7 })).status).toBe(201);
      child.process.kill('SIGTERM');
      await child.exited;
      // then: the log holds the deposit
      const plain = await createApp({ ...bank, store: new AofStore({ dir: tmp.dir }), logger: silentLogger });
      expect(plain.state.get('balance:carol')).toBe(7);
      await plain.close();
      expect(child.stderr()).toBe('');
    });
  });
});
