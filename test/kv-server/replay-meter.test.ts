import 'reflect-metadata';
import { createApp, MemoryStore, silentLogger } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { ReplayMeter } from '../../examples/kv-server/replay-meter';

describe('ReplayMeter', () => {
  it('hands the app what the store says of its snapshot: another version is refused through it as without it', async () => {
    // given: a snapshot of projections version 1
    const memory = new MemoryStore();
    const one = await createApp({
      ...fixtures.conformanceClasses,
      store: memory,
      logger: silentLogger,
      projectionsVersion: 1,
    });
    await one.execute(new fixtures.Count('n', 1));
    await one.compact();
    await one.close();
    // when: version 2 loads it through the meter
    const meter = new ReplayMeter(memory);
    const attempt = createApp({
      ...fixtures.conformanceClasses,
      store: meter,
      logger: silentLogger,
      projectionsVersion: 2,
    });
    // then
    await expect(attempt).rejects.toMatchObject({ code: 'PROJECTIONS_VERSION', snapshotVersion: '1' });
    const same = await createApp({
      ...fixtures.conformanceClasses,
      store: new ReplayMeter(memory),
      logger: silentLogger,
      projectionsVersion: 1,
    });
    expect(same.state.get('n')).toBe(1);
    await same.close();
  });
});
