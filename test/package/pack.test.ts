/**
 * The package as a user gets it: `npm pack` on a clean copy of the repo (the `prepack` build runs),
 * the tarball installed into a fresh app under the OS temp dir with the optional peers, every
 * `exports` subpath imported by plain Node, a strict consumer typechecked under `nodenext`,
 * `bundler` and a browser-only setup, the README's agent run, and `agentwire/client` bundled for
 * the browser by esbuild.
 *
 * Installs are served from the npm cache (`--prefer-offline`, versions pinned by our lockfile, so
 * after `npm ci` nothing needs the network); on a cold cache npm fetches what is missing.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentSource, browserSource, subpathsSource } from './consumer-files.js';
import { cloneProject, lockedVersion, lockedVersions, projectRoot, run, typecheckInChild, writeFiles, type TypecheckResult } from './pack-helpers.js';

interface PackageJson {
  name: string;
  version: string;
  type?: string;
  license?: string;
  engines?: Record<string, string>;
  repository?: { type: string; url: string };
  homepage?: string;
  bugs?: { url: string };
  exports: Record<string, string | { types: string; default: string }>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as PackageJson;
const specifiers = Object.keys(pkg.exports)
  .filter((subpath) => !subpath.endsWith('.json'))
  .map((subpath) => (subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`));
/** True once the tool schemas accept any Standard Schema and the peer range admits zod 3. */
const admitsZod3 = (pkg.peerDependencies?.zod ?? '').split('||').some((part) => /^\s*[\^~>=]*\s*3\./.test(part));

const strict = {
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  noImplicitOverride: true,
  noImplicitReturns: true,
  forceConsistentCasingInFileNames: true,
  target: 'ES2022',
};
const tsconfigs = {
  // A Node app: Node's own resolution (honours `exports` conditions and the `.js` extension rules), no DOM.
  'tsconfig.nodenext.json': {
    compilerOptions: { ...strict, module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'], outDir: 'out', rootDir: 'src' },
    include: ['src'],
  },
  // A bundled app (Vite, Next.js): bundler resolution, DOM and Node types both present.
  'tsconfig.bundler.json': {
    compilerOptions: { ...strict, module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM', 'DOM.Iterable'], types: ['node'], verbatimModuleSyntax: true, noEmit: true },
    include: ['src'],
  },
  // A browser-only page: the client's declarations must not need Node's types.
  'tsconfig.browser.json': {
    compilerOptions: { ...strict, module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM', 'DOM.Iterable'], types: [], verbatimModuleSyntax: true, noEmit: true },
    files: ['src/browser.ts'],
  },
};

/** Typechecks and installs run in niced child processes; on a loaded 2-core machine they take a while. */
const SLOW = 180_000;

let work: string;
/** The three consumer typechecks, run together (one child process) when the first test asks. */
let typechecks: Promise<Record<string, TypecheckResult>> | undefined;
function typecheck(config: keyof typeof tsconfigs): Promise<TypecheckResult> {
  typechecks ??= typecheckInChild(...Object.keys(tsconfigs).map((name) => join(consumer, name)));
  return typechecks.then((results) => results[join(consumer, config)]!);
}
let consumer: string;
let packed: { filename: string; files: { path: string }[] };
let installLog: string;
const timings: Record<string, number> = {};

describe('the published package', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'agentwire-pack-'));
    const clone = join(work, 'clone');
    cloneProject(clone);
    expect(existsSync(join(clone, 'dist')), 'the copy starts without dist/').toBe(false);
    const packing = await run('npm', ['pack', '--json', '--pack-destination', work], clone);
    timings.pack = packing.ms;
    // Lifecycle output goes to stderr with --json; stdout is the JSON report (from its opening bracket).
    packed = (JSON.parse(packing.stdout.slice(packing.stdout.search(/^\[/m))) as (typeof packed)[])[0]!;

    consumer = join(work, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2)}\n`);
    const peers = Object.keys(pkg.peerDependencies ?? {}).map((name) => `${name}@${lockedVersion(name)}`);
    const install = await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=warn', join(work, packed.filename), ...peers, `@types/node@${lockedVersion('@types/node')}`],
      consumer,
    );
    timings.install = install.ms;
    installLog = install.stdout + install.stderr;
    writeFiles(consumer, {
      'src/subpaths.ts': subpathsSource(specifiers),
      'src/agent.ts': agentSource,
      'src/browser.ts': browserSource,
      ...Object.fromEntries(Object.entries(tsconfigs).map(([name, config]) => [name, `${JSON.stringify(config, null, 2)}\n`])),
      'import-all.mjs': `const specifiers = ${JSON.stringify(specifiers)};
const counts = {};
for (const specifier of specifiers) counts[specifier] = Object.keys(await import(specifier)).length;
console.log(JSON.stringify(counts));
`,
    });
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
    console.info(`pack test timings (ms): ${JSON.stringify(timings)}`);
  });

  it('npm pack on a clean copy builds dist and ships declarations, LICENSE, README and nothing else', () => {
    const files = packed.files.map((file) => file.path);
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (typeof target === 'string') continue;
      expect(files, subpath).toContain(target.default.replace(/^\.\//, ''));
      expect(files, subpath).toContain(target.types.replace(/^\.\//, ''));
    }
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'README.md', 'package.json']));
    const unexpected = files.filter((file) => !['LICENSE', 'README.md', 'package.json'].includes(file) && !/^dist\/src\/.+\.(js|d\.ts|js\.map)$/.test(file));
    expect(unexpected).toEqual([]);
    expect(files.filter((file) => file.endsWith('.d.ts.map')), 'declaration maps would point at unshipped .ts').toEqual([]);
    expect(readFileSync(join(consumer, 'node_modules/agentwire/LICENSE'), 'utf8')).toMatch(/^MIT License[\s\S]*agentwire contributors/);
  });

  it('every shipped source map carries its sources (the .ts files are not shipped)', () => {
    const maps = packed.files.map((file) => file.path).filter((file) => file.endsWith('.map'));
    for (const map of maps) {
      const parsed = JSON.parse(readFileSync(join(consumer, 'node_modules/agentwire', map), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      expect(parsed.sourcesContent?.length, map).toBe(parsed.sources.length);
      expect(parsed.sourcesContent?.every((text) => typeof text === 'string' && text.length > 0), map).toBe(true);
    }
  });

  it('declares what a registry page and an installer need', () => {
    const installed = JSON.parse(readFileSync(join(consumer, 'node_modules/agentwire/package.json'), 'utf8')) as PackageJson;
    expect(installed.type).toBe('module');
    expect(installed.license).toBe('MIT');
    expect(installed.engines?.node).toMatch(/^>=\s*20/);
    expect(installed.repository?.url).toContain('github.com/agentwire/agentwire');
    expect(installed.homepage).toMatch(/^https:\/\/github\.com\/agentwire\/agentwire/);
    expect(installed.bugs?.url).toMatch(/^https:\/\/github\.com\/agentwire\/agentwire\/issues/);
    // zod is the app's: a peer (not optional: the event schemas need it), never a second copy of ours.
    expect(installed.dependencies?.zod).toBeUndefined();
    expect(installed.peerDependencies?.zod).toBeDefined();
    expect(installed.peerDependenciesMeta?.zod?.optional).not.toBe(true);
  });

  it('installs with no engine or peer warning', () => {
    expect(installLog).not.toMatch(/EBADENGINE|ERESOLVE|peer dep|invalid peer|unmet peer/i);
  });

  it('every exports subpath imports in plain Node', async () => {
    const imported = await run('node', ['import-all.mjs'], consumer);
    timings.import = imported.ms;
    const counts = JSON.parse(imported.stdout) as Record<string, number>;
    expect(Object.keys(counts)).toEqual(specifiers);
    for (const specifier of specifiers) expect(counts[specifier], specifier).toBeGreaterThan(0);
  });

  it('a strict consumer typechecks under moduleResolution nodenext, and the README agent runs', async () => {
    const checked = await typecheck('tsconfig.nodenext.json');
    timings.nodenext = checked.ms;
    expect(checked.errors).toBe('');
    const ran = await run('node', ['out/agent.js'], consumer);
    const outcome = JSON.parse(ran.stdout) as { status: string; output: string; seen: string[] };
    expect(outcome.status).toBe('succeeded');
    // The app's zod validated both calls: the valid one ran, the empty query was refused, naming the field.
    expect(outcome.output).toMatch(/^result for WHAT IS REDIS\? in chat-42 \| .*args\.query/);
    expect(outcome.seen).toEqual(['agent_started', 'agent_thinking', 'tool_executing', 'tool_completed', 'tool_executing', 'tool_completed', 'agent_completed']);
  }, SLOW);

  it('a strict consumer typechecks under moduleResolution bundler', async () => {
    const checked = await typecheck('tsconfig.bundler.json');
    timings.bundler = checked.ms;
    expect(checked.errors).toBe('');
  }, SLOW);

  it('a browser page typechecks the client without Node types', async () => {
    const checked = await typecheck('tsconfig.browser.json');
    timings.browser = checked.ms;
    expect(checked.errors).toBe('');
  }, SLOW);

  it('agentwire/client bundles for the browser with esbuild, pulling in no Node built-in', async () => {
    const started = performance.now();
    const result = await build({
      absWorkingDir: consumer,
      entryPoints: ['src/browser.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    timings.esbuild = Math.round(performance.now() - started);
    const inputs = Object.keys(result.metafile.inputs);
    const builtins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);
    expect(inputs.filter((input) => builtins.has(input) || input.startsWith('node:'))).toEqual([]);
    // Only the client (from the installed package) and its one dependency: no ws, no zod, no server code.
    const packages = new Set(inputs.filter((input) => input.includes('node_modules/')).map((input) => input.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+)\/.*$/, '$1')));
    expect([...packages].sort()).toEqual(['agentwire', 'eventemitter3']);
    expect(inputs.filter((input) => input.includes('node_modules/agentwire/') && /\/(transport|gateway|bridge|agent|runs)\//.test(input))).toEqual([]);
    expect(result.outputFiles[0]!.text).not.toMatch(/^\s*import\s/m);
  });

  it.runIf(admitsZod3)('an app on zod 3 typechecks (agentwire\'s declarations included) and runs the README agent', async () => {
    const zod3 = lockedVersions('zod').find((version) => version.startsWith('3.'));
    expect(zod3, 'a zod 3 in package-lock.json (so CI has it in the npm cache)').toBeDefined();
    const started = performance.now();
    // A second, smaller app: just the core entry and its own zod 3.
    const app = join(work, 'consumer-zod3');
    writeFiles(app, {
      'package.json': `${JSON.stringify({ name: 'consumer-zod3', private: true, type: 'module' }, null, 2)}\n`,
      'src/agent.ts': agentSource,
      'tsconfig.json': `${JSON.stringify({ ...tsconfigs['tsconfig.nodenext.json'], include: undefined, files: ['src/agent.ts'] }, null, 2)}\n`,
    });
    await run(
      'npm',
      ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=warn', join(work, packed.filename), `zod@${zod3}`, `@types/node@${lockedVersion('@types/node')}`],
      app,
    );
    const tsconfig = join(app, 'tsconfig.json');
    const checked = (await typecheckInChild(tsconfig))[tsconfig]!;
    expect(checked.errors).toBe('');
    const ran = await run('node', ['out/agent.js'], app);
    timings.zod3 = Math.round(performance.now() - started);
    const outcome = JSON.parse(ran.stdout) as { status: string; output: string };
    expect(outcome.status).toBe('succeeded');
    // zod 3 phrases it differently; the field is named all the same.
    expect(outcome.output).toMatch(/^result for WHAT IS REDIS\? in chat-42 \| .*args\.query: String must contain/);
  }, SLOW);
});
