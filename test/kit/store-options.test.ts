import { ConfigError, MemoryStore } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';

/** Builds each store with `extra` on top of its required option; returns the message it throws. */
function messages(extra: Record<string, unknown>): string[] {
  const build = [
    () => new AofStore({ dir: '/tmp/never-opened', ...extra }),
    () => new SqliteWalStore({ file: '/tmp/never-opened.db', ...extra }),
  ];
  return build.map((make) => {
    try {
      make();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message.replace(/^(AofStore|SqliteWalStore): /, '');
    }
    throw new Error(`no error for ${JSON.stringify(extra)}`);
  });
}

describe('kit: store options', () => {
  it.each([
    [{ appendfsync: 'sometimes' }, /^appendfsync must be one of always, everysec, no; got "sometimes"$/],
    [{ autoRewritePercentage: -1 }, /^autoRewritePercentage must be an integer ≥ 0; got -1$/],
    [{ autoRewriteMinSize: 1.5 }, /^autoRewriteMinSize must be an integer ≥ 0; got 1.5$/],
    [{ noAppendfsyncOnRewrite: 'yes' }, /^noAppendfsyncOnRewrite must be true or false; got "yes"$/],
    [{ keepHistory: 1 }, /^keepHistory must be true or false; got 1$/],
    [{ apendfsync: 'always' }, /^unknown option "apendfsync"; known options: /],
  ])('rejects %j with the same message on every durable store', (extra, message) => {
    const [aof, sqlite] = messages(extra);
    expect(aof).toMatch(message);
    expect(sqlite).toMatch(message);
  });

  it('the memory store checks its compaction options with the same messages', () => {
    expect(() => new MemoryStore({ autoRewritePercentage: -1 })).toThrow(
      'MemoryStore: autoRewritePercentage must be an integer ≥ 0; got -1',
    );
    expect(() => new MemoryStore({ autoRewriteMinSize: 'big' } as never)).toThrow(
      'MemoryStore: autoRewriteMinSize must be an integer ≥ 0; got "big"',
    );
  });
});
