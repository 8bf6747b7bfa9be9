// @ts-check
/**
 * `npm run docs`: the API reference (TypeDoc, from the TSDoc comments) in docs/api/ (generated,
 * not committed). One module per `exports` subpath of package.json, read from there so the
 * reference always documents exactly what the package exports.
 */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const entryPoints = Object.values(pkg.exports)
  .filter((target) => typeof target === 'object')
  .map((target) => target.default.replace(/^\.\/dist\//, './').replace(/\.js$/, '.ts'));

/** @type {Partial<import('typedoc').TypeDocOptions>} */
const config = {
  name: pkg.name,
  entryPoints,
  entryPointStrategy: 'resolve',
  tsconfig: './tsconfig.build.json',
  out: './docs/api',
  readme: 'none',
  excludePrivate: true,
  excludeProtected: false,
  excludeInternal: true,
  excludeExternals: true,
  sort: ['source-order'],
  validation: { notExported: true, invalidLink: true, rewrittenLink: true, notDocumented: false, unusedMergeModuleWith: true },
  // Types a public signature names but no entry point exports. Listed so that the run stays strict
  // (any new one fails `npm run docs`, and so does a listed one that no longer needs listing);
  // each should be exported or its member made internal.
  intentionallyNotExported: [
    'src/metrics/bridge-metrics.ts:Family',
    'src/metrics/gateway-metrics.ts:Family',
    'src/metrics/collector.ts:Labels',
    'src/transport/redis/options.ts:ResolvedEventLogOptions',
    'src/transport/redis/options.ts:ResolvedTransportOptions',
    'src/transport/redis/connection.ts:RedisConnection',
  ],
  treatValidationWarningsAsErrors: true,
  treatWarningsAsErrors: true,
  githubPages: false,
  // Source links to the repository without asking git (a CI checkout may have no usable remote).
  // {path} is relative to the entry points' common folder, src/.
  disableGit: true,
  sourceLinkTemplate: 'https://github.com/agentwire/agentwire/blob/{gitRevision}/src/{path}#L{line}',
  gitRevision: 'main',
  sourceLinkExternal: true,
};
export default config;
