// An `--app` module of release 2 of the bank in test/events/child/bank-v1.ts: `Deposited` gained
// a currency (version 2), and events of version 1 are upcast to EUR.
import 'reflect-metadata';
import { defineEvent } from 'appendonly';

export const Deposited = defineEvent<{ account: string; amount: number; currency: string }>('Deposited', {
  version: 2,
  upcast: { 1: (old) => ({ ...old, currency: 'EUR' }) },
});
export const handlers = [];
export const projections = [];
