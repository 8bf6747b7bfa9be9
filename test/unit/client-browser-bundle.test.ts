import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

/** Bundles an entry for the browser and lists the modules it pulled in. */
async function browserBundle(entry: string): Promise<{ inputs: string[]; code: string }> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  return { inputs: Object.keys(result.metafile.inputs), code: result.outputFiles[0]!.text };
}

describe('agentwire/client in the browser', () => {
  it('bundles for the browser with no Node built-in, no ws, no zod and no server code', async () => {
    // A Node built-in anywhere in the graph would make this build fail to resolve it.
    const { inputs, code } = await browserBundle('src/client/index.ts');
    expect(inputs.filter((path) => path.includes('node_modules/')).every((path) => path.includes('node_modules/eventemitter3/'))).toBe(true);
    const ours = inputs.filter((path) => path.startsWith('src/'));
    expect(ours.filter((path) => !path.startsWith('src/client/') && !path.startsWith('src/errors/'))).toEqual(['src/events/lifecycle.ts']);
    expect(ours).not.toContain('src/client/node.ts');
    // Everything is inlined: nothing is left for the page to import.
    expect(code).not.toMatch(/^\s*import\s/m);
  });

  it('the Node convenience entry is the one that brings ws', async () => {
    const { inputs } = await browserBundle('src/client/node.ts');
    expect(inputs.some((path) => /(^|\/)node_modules\/ws\//.test(path))).toBe(true);
  });
});
