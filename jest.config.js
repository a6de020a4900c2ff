/** @type {import('jest').Config} */
const swc = {
  jsc: {
    target: 'es2022',
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
  },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', swc] },
  moduleNameMapper: {
    '^appendonly$': '<rootDir>/src/index.ts',
    '^appendonly/testing$': '<rootDir>/src/testing/index.ts',
    '^appendonly/adapters/(aof|sqlite-wal|postgres)$': '<rootDir>/adapters/$1/index.ts',
    '^appendonly/nestjs$': '<rootDir>/integrations/nestjs/index.ts',
    '^appendonly/opentelemetry$': '<rootDir>/integrations/opentelemetry/index.ts',
  },
  testTimeout: 60000,
};
