import { existsSync, readFileSync } from 'node:fs';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, string | { types: string; default: string }>;
  files: string[];
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
};
/** The peers an app installs only for the subpath that needs them (zod is a required peer). */
const optionalPeers = Object.keys(pkg.peerDependencies).filter((name) => pkg.peerDependenciesMeta[name]?.optional);

describe('package exports', () => {
  it('every subpath points at a built file whose source exists', () => {
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (typeof target === 'string') continue;
      const source = target.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts');
      expect(existsSync(new URL(`../../${source}`, import.meta.url)), `${subpath} → ${source}`).toBe(true);
      expect(target.types).toBe(target.default.replace(/\.js$/, '.d.ts'));
      // Conditions match in order: `types` must come first or TypeScript never sees it.
      expect(Object.keys(target), subpath).toEqual(['types', 'default']);
      expect(pkg.files.some((folder) => target.default.startsWith(`./${folder}/`)), `${subpath} is in "files"`).toBe(true);
    }
  });

  it('the core entry pulls in no optional peer (ai, redis, @ag-ui/core, prom-client)', async () => {
    const result = await build({
      entryPoints: [new URL('../../src/index.ts', import.meta.url).pathname],
      bundle: true,
      write: false,
      metafile: true,
      platform: 'node',
      format: 'esm',
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(optionalPeers.length).toBeGreaterThan(0);
    for (const peer of optionalPeers) {
      expect(inputs.filter((path) => path.includes(`node_modules/${peer}/`)), peer).toEqual([]);
    }
  });
});
