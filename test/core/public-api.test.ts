import * as path from 'node:path';
import ts from 'typescript';

const root = path.resolve(__dirname, '../..');
const entries = [
  'src/index.ts',
  'src/testing/index.ts',
  'adapters/aof/index.ts',
  'adapters/sqlite-wal/index.ts',
  'adapters/postgres/index.ts',
];

/**
 * The public API is the entry points' exports: each needs TSDoc, and no `any` may leak into
 * their types (strict TypeScript promises users that much).
 */
describe('public API', () => {
  const program = ts.createProgram(
    entries.map((e) => path.join(root, e)),
    {
      strict: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      skipLibCheck: true,
      types: ['node', 'jest'],
    },
  );
  const checker = program.getTypeChecker();

  const show = (type: ts.Type) =>
    checker.typeToString(type, undefined, ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.InTypeAlias);

  /** The types a user meets through one export: its value's type, or its members' types for interfaces and classes. */
  function typesOf(symbol: ts.Symbol): [string, string][] {
    const decl = symbol.valueDeclaration ?? symbol.declarations?.[0];
    if (decl === undefined) return [];
    const out: [string, string][] = [];
    if (symbol.flags & ts.SymbolFlags.TypeAlias)
      out.push(['', show(checker.getDeclaredTypeOfSymbol(symbol))]);
    if (symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.Class)) {
      for (const member of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol))) {
        if (
          member.getName().startsWith('__') ||
          (member.valueDeclaration &&
            ts.getCombinedModifierFlags(member.valueDeclaration as ts.Declaration) & ts.ModifierFlags.Private)
        )
          continue;
        out.push([`.${member.getName()}`, show(checker.getTypeOfSymbolAtLocation(member, decl))]);
      }
    }
    if (symbol.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Variable | ts.SymbolFlags.Class)) {
      out.push(['', show(checker.getTypeOfSymbolAtLocation(symbol, decl))]);
    }
    return out;
  }

  it.each(entries)('%s: every export has TSDoc and no any', (entry) => {
    const source = program.getSourceFile(path.join(root, entry));
    expect(source).toBeDefined();
    const moduleSymbol = checker.getSymbolAtLocation(source!);
    const exports = checker.getExportsOfModule(moduleSymbol!);
    expect(exports.length).toBeGreaterThan(0);
    const undocumented: string[] = [];
    const withAny: string[] = [];
    for (const exported of exports) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const doc = [exported, symbol]
        .map((s) => ts.displayPartsToString(s.getDocumentationComment(checker)).trim())
        .join('');
      if (doc === '' && symbol.getJsDocTags().length === 0) undocumented.push(exported.getName());
      for (const [where, text] of typesOf(symbol))
        if (/\bany\b/.test(text)) withAny.push(`${exported.getName()}${where}: ${text}`);
    }
    expect(undocumented).toEqual([]);
    expect(withAny).toEqual([]);
  });
});
