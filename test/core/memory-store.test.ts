import 'reflect-metadata';
import { MemoryStore } from 'appendonly';
import { runStoreConformance } from 'appendonly/testing';

runStoreConformance('MemoryStore', () => {
  // One instance is the log; the first open's options make it.
  let store: MemoryStore | undefined;
  return { open: (o) => (store ??= new MemoryStore(o)) };
});
