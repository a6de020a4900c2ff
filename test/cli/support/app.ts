// An `--app` module for the CLI tests: the conformance fixtures' handlers and projections.
import 'reflect-metadata';
import { fixtures } from 'appendonly/testing';

export const handlers = fixtures.conformanceClasses.handlers;
export const projections = fixtures.conformanceClasses.projections;
