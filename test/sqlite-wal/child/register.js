// Lets a child process `node -r ./register.js child.ts` run the TypeScript sources as jest does
// (swc, CommonJS, legacy decorators), with the `appendonly` paths mapped to the sources.
const Module = require('node:module');
const path = require('node:path');
const fs = require('node:fs');
const swc = require('@swc/core');

const root = path.resolve(__dirname, '../../..');
const aliases = {
  appendonly: 'src/index.ts',
  'appendonly/testing': 'src/testing/index.ts',
  'appendonly/adapters/aof': 'adapters/aof/index.ts',
  'appendonly/adapters/sqlite-wal': 'adapters/sqlite-wal/index.ts',
};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  if (aliases[request]) return path.join(root, aliases[request]);
  try {
    return resolve.call(this, request, parent, ...rest);
  } catch (err) {
    if (request.startsWith('.')) return resolve.call(this, `${request}.ts`, parent, ...rest);
    throw err;
  }
};
require.extensions['.ts'] = (module, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
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
