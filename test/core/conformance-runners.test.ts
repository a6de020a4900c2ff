import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

/*
 * runStoreConformance is not tied to jest: it asserts with node:assert/strict and takes the
 * runner's describe / it / beforeEach / afterEach. Here it runs under `node --test`, on the
 * MemoryStore (it passes) and on a store whose replay drops its last command (it fails, with
 * node:assert's errors).
 */

const ROOT = path.resolve(__dirname, '../..');
const SUITE = path.join(__dirname, 'node-test/conformance.ts');

function nodeTest(store: string): { status: number | null; out: string } {
  const r = spawnSync(
    process.execPath,
    ['--test', '--test-reporter=tap', '--require', path.join(ROOT, 'test/support/register.js'), SUITE],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, CONFORMANCE_STORE: store }, timeout: 120_000 },
  );
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('runStoreConformance under node:test', () => {
  it('passes on the MemoryStore', () => {
    const r = nodeTest('memory');
    expect(r.out).toMatch(/^# pass [1-9]\d*$/m);
    expect(r.out).toMatch(/^# fail 0$/m);
    expect(r.out).toContain('ok 2 - replays what was appended: same state, same sequence numbers');
    expect(r.status).toBe(0);
  });

  it('fails on a store whose replay drops the last command, with node:assert errors', () => {
    const r = nodeTest('drops-last-group');
    expect(r.status).toBe(1);
    expect(r.out).toContain('not ok 2 - replays what was appended: same state, same sequence numbers');
    expect(r.out).toContain("name: 'AssertionError'");
    expect(r.out).toMatch(/^# fail [1-9]\d*$/m);
  });

  it('without the test functions and without globals, says what to pass', () => {
    const r = nodeTest('no-api');
    expect(r.status).toBe(1);
    expect(r.out).toContain(
      'runStoreConformance: no global describe, it, beforeEach, afterEach; pass the test functions as its third argument',
    );
  });
});
