import fc from 'fast-check';
import { globMatch } from '../../examples/kv-server/glob';
import {
  DEFAULT_LIMITS,
  ProtocolError,
  type Request,
  RequestParser,
  splitArgs,
} from '../../examples/kv-server/protocol';

function encode(args: readonly string[]): Buffer {
  let s = `*${args.length}\r\n`;
  for (const a of args) s += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(s);
}

/** Feeds `bytes` in the given chunk sizes and collects the requests. */
function parse(bytes: Buffer, cuts: readonly number[] = [], parser = new RequestParser()): Request[] {
  const out: Request[] = [];
  let pos = 0;
  const points = [...cuts.filter((c) => c > 0 && c < bytes.length)].sort((a, b) => a - b);
  for (const end of [...points, bytes.length]) {
    parser.push(bytes.subarray(pos, end));
    pos = end;
    for (let r = parser.next(); r !== null; r = parser.next()) out.push(r);
  }
  return out;
}

function errorOf(bytes: string | Buffer, parser = new RequestParser()): string {
  try {
    parse(Buffer.from(bytes), [], parser);
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return (err as Error).message;
  }
  throw new Error('no protocol error');
}

describe('RequestParser', () => {
  it('reads pipelined multibulk requests cut at every possible byte', () => {
    const requests = [['SET', 'k', 'v\r\nwith\r\nnewlines'], ['GET', 'k'], ['SET', 'ü', '€ 😀'], ['PING']];
    const bytes = Buffer.concat(requests.map(encode));
    for (let cut = 0; cut <= bytes.length; cut++) {
      expect(parse(bytes, [cut]).map((r) => r.args)).toEqual(requests);
    }
  });

  it('reads any pipeline of requests in any chunking (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.string({ unit: 'grapheme', maxLength: 40 }), { minLength: 1, maxLength: 6 }), {
          minLength: 1,
          maxLength: 8,
        }),
        fc.array(fc.nat(2000), { maxLength: 12 }),
        (requests, cuts) => {
          const bytes = Buffer.concat(requests.map(encode));
          expect(parse(bytes, cuts).map((r) => r.args)).toEqual(requests);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads inline requests with quotes and escapes, as redis-cli and telnet send them', () => {
    const bytes = Buffer.from('PING\r\nSET "a key" \'it\\\'s\'\r\n\r\nECHO "tab\\there\\x41"\nGET  x  \r\n');
    expect(parse(bytes).map((r) => r.args)).toEqual([
      ['PING'],
      ['SET', 'a key', "it's"],
      ['ECHO', 'tab\thereA'],
      ['GET', 'x'],
    ]);
  });

  it('gathers a large argument sent in many chunks once, and holds no buffer once idle', () => {
    const value = 'x'.repeat(1_000_000);
    const bytes = encode(['SET', 'big', value]);
    const cuts = Array.from({ length: 200 }, (_, i) => (i + 1) * 5000);
    const parser = new RequestParser();
    const [request] = parse(bytes, cuts, parser);
    expect(request.args[2].length).toBe(value.length);
    expect(parser.buffered).toBe(0);
  });

  it('marks a request holding bytes that are not UTF-8', () => {
    const bytes = Buffer.concat([
      Buffer.from('*2\r\n$4\r\nECHO\r\n$2\r\n'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('\r\n'),
    ]);
    expect(parse(bytes)[0].invalidUtf8).toBe(true);
    expect(parse(encode(['ECHO', '\uFFFD']))[0].invalidUtf8).toBe(false);
  });

  it('refuses hostile headers as soon as they are read, with Redis error texts', () => {
    expect(errorOf('*1\r\n$999999999999\r\n')).toBe('Protocol error: invalid bulk length');
    expect(errorOf('*1\r\n$-5\r\n')).toBe('Protocol error: invalid bulk length');
    expect(errorOf('*99999999999\r\n')).toBe('Protocol error: invalid multibulk length');
    expect(errorOf(`*${DEFAULT_LIMITS.maxArgs + 1}\r\n`)).toBe('Protocol error: invalid multibulk length');
    expect(errorOf('*1x\r\n')).toBe('Protocol error: invalid multibulk length');
    expect(errorOf('*1\r\n+PING\r\n')).toBe("Protocol error: expected '$', got '+'");
    expect(errorOf('SET "unbalanced\r\n')).toBe('Protocol error: unbalanced quotes in request');
    expect(errorOf('x'.repeat(DEFAULT_LIMITS.maxInline + 10))).toBe('Protocol error: too big inline request');
    expect(errorOf(`*${'1'.repeat(DEFAULT_LIMITS.maxInline + 10)}`)).toBe(
      'Protocol error: too big mbulk count string',
    );
    expect(errorOf(`*1\r\n$${'1'.repeat(DEFAULT_LIMITS.maxInline + 10)}`)).toBe(
      'Protocol error: too big bulk count string',
    );
  });

  it('holds strangers to small requests until they authenticate', () => {
    expect(errorOf('*11\r\n', new RequestParser(DEFAULT_LIMITS, false))).toBe(
      'Protocol error: unauthenticated multibulk length',
    );
    expect(errorOf('*2\r\n$4\r\nAUTH\r\n$20000\r\n', new RequestParser(DEFAULT_LIMITS, false))).toBe(
      'Protocol error: unauthenticated bulk length',
    );
    const parser = new RequestParser(DEFAULT_LIMITS, false);
    parser.authenticated = true;
    expect(parse(encode(['SET', 'k', 'v'.repeat(20000)]), [], parser)).toHaveLength(1);
  });

  it('skips empty requests (*0, *-1, blank lines)', () => {
    expect(parse(Buffer.from('*0\r\n*-1\r\n\r\n*1\r\n$4\r\nPING\r\n')).map((r) => r.args)).toEqual([
      ['PING'],
    ]);
  });
});

describe('splitArgs', () => {
  it('splits as sdssplitargs', () => {
    expect(splitArgs('  a  b\tc ')).toEqual(['a', 'b', 'c']);
    expect(splitArgs('"a b" \'c d\' ""')).toEqual(['a b', 'c d', '']);
    expect(splitArgs('"\\n\\r\\\\\\""')).toEqual(['\n\r\\"']);
    expect(splitArgs('"a"b')).toBeNull();
    expect(splitArgs("'a")).toBeNull();
  });
});

describe('globMatch', () => {
  it.each([
    ['*', 'anything', true],
    ['h?llo', 'hello', true],
    ['h?llo', 'hllo', false],
    ['h*llo', 'heeeello', true],
    ['h[ae]llo', 'hallo', true],
    ['h[ae]llo', 'hillo', false],
    ['h[^e]llo', 'hallo', true],
    ['h[^e]llo', 'hello', false],
    ['h[a-b]llo', 'hbllo', true],
    ['h[b-a]llo', 'hallo', true],
    ['user:*:name', 'user:42:name', true],
    ['user:*:name', 'user:42:mail', false],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
  ])('%s ~ %s → %s', (pattern, text, expected) => {
    expect(globMatch(pattern, text)).toBe(expected);
  });

  it('does not backtrack exponentially on many stars', () => {
    expect(globMatch('*a*a*a*a*a*a*a*b', 'a'.repeat(20000))).toBe(false);
  });
});
