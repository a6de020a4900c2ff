import 'reflect-metadata';
import { DEL, FLUSHALL, SET } from 'appendonly';
import { AppSpecification } from 'appendonly/testing';
import {
  Appended,
  AppendString,
  DeleteKeys,
  FlushAll,
  IncrementBy,
  kvDomain,
  parseInteger,
  RedisError,
  SetString,
  SetStrings,
} from '../../examples/kv-server/domain';

/** The write side of the kv-server, given / when / then: which events each Redis command logs. */
const spec = AppSpecification.for(kvDomain);

describe('kv-server domain', () => {
  it('SET logs a SET of the JSON string', () =>
    spec
      .given()
      .when(new SetString('k', 'v'))
      .thenEvents([SET('k', 'v')]));

  it('SET NX on an existing key logs nothing', () =>
    spec
      .given(new SetString('k', 'v'))
      .when(new SetString('k', 'w', 'NX'))
      .thenEvents([]));

  it('SET XX on a missing key logs nothing', () =>
    spec
      .given()
      .when(new SetString('k', 'w', 'XX'))
      .thenEvents([]));

  it('MSET is one command of several SETs (all or none)', () =>
    spec
      .given()
      .when(new SetStrings(['a', '1', 'b', '2']))
      .thenEvents([SET('a', '1'), SET('b', '2')]));

  it('DEL logs only the keys that exist, once each; deleting nothing logs nothing', async () => {
    await spec
      .given(new SetString('a', '1'))
      .when(new DeleteKeys(['a', 'a', 'b']))
      .thenEvents([DEL('a')]);
    await spec
      .given()
      .when(new DeleteKeys(['x']))
      .thenEvents([]);
  });

  it('INCR logs the result, so replay needs no arithmetic', () =>
    spec
      .given(new SetString('n', '41'))
      .when(new IncrementBy('n', 1))
      .thenEvents([SET('n', '42')]));

  it('INCR on a non-integer or past 64 bits is refused and changes nothing', async () => {
    await spec
      .given(new SetString('n', 'abc'))
      .when(new IncrementBy('n', 1))
      .thenThrows(RedisError, /not an integer/);
    await spec
      .given(new SetString('n', '9223372036854775807'))
      .when(new IncrementBy('n', 1))
      .thenThrows(RedisError, /would overflow/);
  });

  it('APPEND logs the suffix; the projection builds the value', async () => {
    await spec
      .given(new SetString('s', 'ab'))
      .when(new AppendString('s', 'cd'))
      .thenEvents([Appended({ key: 's', suffix: 'cd' })]);
    await spec.given(new SetString('s', 'ab')).when(new AppendString('s', 'cd')).thenState({ s: 'abcd' });
  });

  it('FLUSHALL logs FLUSHALL, even on an empty state', () =>
    spec.given().when(new FlushAll()).thenEvents([FLUSHALL()]));

  it('parseInteger reads integers as Redis string2ll does', () => {
    expect(parseInteger('0')).toBe(0);
    expect(parseInteger('-12')).toBe(-12);
    expect(parseInteger('9223372036854775807')).toBe(9223372036854775807n);
    for (const bad of ['', '-0', '01', '+1', ' 1', '1.0', '9223372036854775808', '1e3', 'abc'])
      expect(parseInteger(bad)).toBeNull();
  });
});
