// Lets a child process run the TypeScript sources directly (`node -r ./test/support/register.js x.ts`),
// with the same transform and the same 'appendonly' aliases as jest, so crash tests kill a real
// process running the real code without a build step.
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const { transformSync } = require('@swc/core');

const root = path.resolve(__dirname, '../..');
const aliases = {
  appendonly: 'src/index.ts',
  'appendonly/testing': 'src/testing/index.ts',
  'appendonly/adapters/aof': 'adapters/aof/index.ts',
  'appendonly/adapters/sqlite-wal': 'adapters/sqlite-wal/index.ts',
  'appendonly/adapters/postgres': 'adapters/postgres/index.ts',
  'appendonly/nestjs': 'integrations/nestjs/index.ts',
  'appendonly/opentelemetry': 'integrations/opentelemetry/index.ts',
};

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const alias = aliases[request];
  return resolve.call(this, alias ? path.join(root, alias) : request, ...rest);
};

require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
    },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};
