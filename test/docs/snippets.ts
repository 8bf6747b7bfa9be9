import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { codeBlocks, markdownFiles, projectRoot, type CodeBlock } from './markdown.js';
import { snippetContext } from './snippet-context.js';

const LANGS = new Set(['ts', 'typescript']);
/** ```ts nocheck: a block that is deliberately not compiled. */
export const NOCHECK = 'nocheck';

/** Every ```ts / ```typescript block of README.md, SECURITY.md, CHANGELOG.md and docs/**.md. */
export function typescriptBlocks(): CodeBlock[] {
  return markdownFiles(['README.md', 'SECURITY.md', 'CHANGELOG.md'])
    .flatMap((file) => codeBlocks(file))
    .filter((block) => LANGS.has(block.lang));
}

export const blockId = (block: CodeBlock): string => `${block.file}:${block.line}`;

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

/** A block's place in the program: a virtual file in the repo, so bare imports resolve from its node_modules. */
const virtualName = (block: CodeBlock): string => join(projectRoot, '.snippets', `${block.file.replace(/[/.]/g, '_')}_L${block.line}.ts`);
export const CONTEXT = '(snippet context)';

/** `README.md:42:7 TS2304 Cannot find name 'x'.`, with the line in the markdown file. */
function format(block: CodeBlock | undefined, diagnostic: ts.Diagnostic): string {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n  ');
  if (!block || !diagnostic.file || diagnostic.start === undefined) return `${block ? blockId(block) : CONTEXT} TS${diagnostic.code} ${message}`;
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  return `${block.file}:${block.line + 1 + line}:${character + 1} TS${diagnostic.code} ${message}`;
}

/**
 * Typechecks the blocks (all but nocheck ones) in one strict program against src/. Each block is
 * a module of its own (names do not collide; top-level await works). Returns the errors of each
 * block by {@link blockId}, and of the shared context under {@link CONTEXT}.
 */
export function compileSnippets(blocks: readonly CodeBlock[]): Record<string, string[]> {
  const checked = blocks.filter((block) => !block.flags.includes(NOCHECK));
  const contextName = join(projectRoot, '.snippets', 'snippet-context.ts');
  const virtual = new Map<string, string>([[contextName, snippetContext]]);
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
  const diagnosticsOf = (fileName: string): readonly ts.Diagnostic[] => {
    const file = program.getSourceFile(fileName)!;
    return [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
  };
  const errors: Record<string, string[]> = {};
  for (const block of checked) errors[blockId(block)] = diagnosticsOf(virtualName(block)).map((d) => format(block, d));
  errors[CONTEXT] = [...diagnosticsOf(contextName), ...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()].map((d) => format(undefined, d));
  return errors;
}
