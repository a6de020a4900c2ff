// An `--app` module for the CLI tests: the conformance fixtures, declared as projections version 1.
import 'reflect-metadata';
import { fixtures } from 'appendonly/testing';

export const handlers = fixtures.conformanceClasses.handlers;
export const projections = fixtures.conformanceClasses.projections;
export const projectionsVersion = 1;
