import 'reflect-metadata';
import { MemoryStore } from 'appendonly';
import { runStoreConformance } from 'appendonly/testing';

runStoreConformance('MemoryStore', () => {
  const store = new MemoryStore();
  return { open: () => store };
});
