/**
 * Every ```ts / ```typescript block of README.md and docs/**.md is typechecked (strict) against the
 * package's own sources: `agentwire` and each `agentwire/*` subpath map to src/ through `paths`
 * mirroring package.json `exports`. Each block is its own module (top-level await allowed).
 *
 * What a snippet leaves to the reader (your token verifier, your model, the agent defined further
 * up) is declared once, typed, in ./snippet-context.ts. A block that is deliberately not
 * compilable is fenced as ```ts nocheck; use that sparingly.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import { codeBlocks, markdownFiles, projectRoot, type CodeBlock } from './markdown.js';
import { snippetContext } from './snippet-context.js';

const LANGS = new Set(['ts', 'typescript']);
const NOCHECK = 'nocheck';

const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | { types: string; default: string }>;
};

/** `agentwire` → src/index.ts, `agentwire/client` → src/client/index.ts …, from package.json `exports`. */
function exportPaths(): Record<string, string[]> {
  const paths: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === 'string') continue;
    const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    paths[specifier] = [target.default.replace(/^\.\/dist\//, './').replace(/\.js$/, '.ts')];
  }
  return paths;
}

const blocks: CodeBlock[] = markdownFiles().flatMap((file) => codeBlocks(file)).filter((block) => LANGS.has(block.lang));
const checked = blocks.filter((block) => !block.flags.includes(NOCHECK));
const skipped = blocks.filter((block) => block.flags.includes(NOCHECK));

/** Where a block lives in the program: a virtual file beside the docs, so bare imports resolve from the repo. */
const virtualName = (block: CodeBlock): string => join(projectRoot, '.snippets', `${block.file.replace(/[/.]/g, '_')}_L${block.line}.ts`);
const contextName = join(projectRoot, '.snippets', 'snippet-context.ts');

let diagnosticsByFile: Map<string, readonly ts.Diagnostic[]>;

function compile(): Map<string, readonly ts.Diagnostic[]> {
  const virtual = new Map<string, string>([[contextName, snippetContext]]);
  // Each block is a module: its names do not collide with another block's; `export {}` makes even an import-free block one.
  for (const block of checked) virtual.set(virtualName(block), `${block.code}\nexport {};\n`);
  const options: ts.CompilerOptions = {
    strict: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
    types: ['node'],
    baseUrl: projectRoot,
    paths: exportPaths(),
    esModuleInterop: true,
    skipLibCheck: true,
    noEmit: true,
    allowImportingTsExtensions: true,
  };
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, language, onError, shouldCreate) => {
    const text = virtual.get(fileName);
    return text !== undefined ? ts.createSourceFile(fileName, text, language, true) : getSourceFile(fileName, language, onError, shouldCreate);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (fileName) => virtual.has(fileName) || fileExists(fileName);
  const readFile = host.readFile.bind(host);
  host.readFile = (fileName) => virtual.get(fileName) ?? readFile(fileName);
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const result = new Map<string, readonly ts.Diagnostic[]>();
  for (const fileName of virtual.keys()) {
    const file = program.getSourceFile(fileName)!;
    result.set(fileName, [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)]);
  }
  result.set('(options)', [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()]);
  return result;
}

/** `README.md:42:7 TS2304 Cannot find name 'x'.`, with the line in the markdown file. */
function describe_(block: CodeBlock, diagnostic: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ');
  if (!diagnostic.file || diagnostic.start === undefined) return `${block.file}:${block.line} TS${diagnostic.code} ${message}`;
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  return `${block.file}:${block.line + 1 + line}:${character + 1} TS${diagnostic.code} ${message}`;
}

describe('TypeScript code blocks in the docs', () => {
  beforeAll(() => {
    const started = performance.now();
    diagnosticsByFile = compile();
    console.info(`docs code blocks: ${checked.length} typechecked in ${Math.round(performance.now() - started)} ms; nocheck: ${skipped.map((block) => `${block.file}:${block.line}`).join(', ') || 'none'}`);
  }, 120_000);

  it('finds the blocks (README has TypeScript examples)', () => {
    expect(checked.filter((block) => block.file === 'README.md').length).toBeGreaterThan(0);
  });

  it('the shared context for snippets compiles', () => {
    expect([...diagnosticsByFile.get(contextName)!, ...diagnosticsByFile.get('(options)')!].map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  });

  it.each(checked.map((block) => [`${block.file}:${block.line}`, block] as const))('%s compiles', (_name, block) => {
    const diagnostics = diagnosticsByFile.get(virtualName(block))!;
    expect(diagnostics.map((diagnostic) => describe_(block, diagnostic))).toEqual([]);
  });
});
