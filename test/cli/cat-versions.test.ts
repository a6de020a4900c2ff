import * as path from 'node:path';
import { legacyEventId, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { spawnChild } from '../support/child';
import { cli, tempDir } from './helpers';

const BANK_V2 = path.join(__dirname, 'support/bank-v2.ts');

/*
 * `appendonly cat` and event versions: without `--app` it shows each event as logged; with the
 * app's module it upcasts as replay does (`--as-logged` to see the log as it is), and refuses an
 * event newer than the module knows, naming it.
 */
describe('appendonly cat: versions, ids, metadata', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    // given a log of two deposits written by release 1 of the bank (Deposited unversioned)
    const child = spawnChild(path.join(__dirname, '../events/child/bank-v1.ts'), ['aof', dir, '2']);
    expect(await child.waitFor(/^(done|error) /)).toBe('done 2');
    await child.exited;
  });
  afterEach(() => cleanup());

  const events = (args: string[]) =>
    cli(['cat', dir, '--json', ...args])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('shows events as logged; with --app, upcast to the current version; --as-logged as logged', () => {
    // when cat runs without the app's module, then each event is at its logged version 1, with its id
    const plain = events([]);
    expect(plain[0]).toEqual({
      kind: 'event',
      seq: 1,
      time: expect.any(String),
      group: 1,
      type: 'Deposited',
      data: { account: 'alice', amount: 1 },
      version: 1,
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7/),
      metadata: null,
    });
    // when it runs with release 2's module, then the data is upcast and the logged version said
    const upcast = events(['--app', BANK_V2]);
    expect(upcast[1]).toEqual(
      expect.objectContaining({
        data: { account: 'alice', amount: 2, currency: 'EUR' },
        version: 2,
        loggedVersion: 1,
      }),
    );
    expect(upcast[1].id).toBe(plain[1].id);
    // and --as-logged shows the log as it is
    expect(events(['--app', BANK_V2, '--as-logged'])).toEqual(plain);
    // and the text form names both versions
    expect(cli(['cat', dir, '--app', BANK_V2]).stdout).toMatch(
      /^1 \S+ Deposited \{"account":"alice","amount":1,"currency":"EUR"\} v2 \(logged v1\) id=\S+ metadata=-$/m,
    );
  });

  it('with --app, refuses an event newer than the module knows, naming type, version and position', async () => {
    // given a third deposit logged at version 3 (a later release)
    const store = new AofStore({ dir });
    await store.open({
      snapshots: {
        takeSnapshot: () => ({ seq: 0, size: 0, entries: () => [][Symbol.iterator](), release: () => {} }),
      },
      logger: silentLogger,
      clock: { now: Date.now },
    });
    await store.replay({ snapshot() {}, entry() {}, group() {}, set() {} });
    await store.append({
      seq: 3,
      time: 1,
      events: [{ type: 'Deposited', data: { account: 'alice', pence: 3 } }],
      ids: [legacyEventId(3)],
      versions: [3],
      metadata: { correlationId: 'r-3' },
    });
    await store.close();
    // when cat runs with release 2's module, then it fails with EVENT_VERSION naming the record
    const r = cli(['cat', dir, '--app', BANK_V2]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(
      /"Deposited" at version 3 \(seq 3, appendonly\.aof\.1\.incr\.aof at byte offset \d+\).*up to version 2/,
    );
    // and without it, the event is shown as logged, metadata included
    expect(events([])[2]).toEqual(
      expect.objectContaining({ version: 3, metadata: { correlationId: 'r-3' } }),
    );
  });
});
