import 'reflect-metadata';
import { createApp, silentLogger, UnknownEventTypeError } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { tempDir, writeLog } from './helpers';

describe('AofStore: an event type the app does not define', () => {
  it('stops the load naming the type, its seq, its file and its byte offset', async () => {
    const { dir, cleanup } = tempDir();
    try {
      // given a log written by other code: a SET, then a group holding a type this app never defined
      await writeLog(dir, [
        { seq: 1, time: 0, events: [{ type: 'SET', data: { key: 'a', value: 1 } }] },
        { seq: 2, time: 0, events: [{ type: 'ShippedInV2', data: { id: 7 } }] },
      ]);
      const firstGroupBytes = '*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n#CRC:00000000\r\n'.length;
      // when the app opens it, then
      const attempt = createApp({ store: new AofStore({ dir }), logger: silentLogger });
      await expect(attempt).rejects.toThrow(UnknownEventTypeError);
      await expect(createApp({ store: new AofStore({ dir }), logger: silentLogger })).rejects.toThrow(
        `type "ShippedInV2" (seq 2, appendonly.aof.1.incr.aof at byte offset ${firstGroupBytes})`,
      );
      // and with unknownEventTypes: 'skip' it loads the rest
      const app = await createApp({
        store: new AofStore({ dir }),
        logger: silentLogger,
        unknownEventTypes: 'skip',
      });
      expect(Object.fromEntries(app.state.entries())).toEqual({ a: 1 });
      await app.close();
    } finally {
      cleanup();
    }
  });
});
