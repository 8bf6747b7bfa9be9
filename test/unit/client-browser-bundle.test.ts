import { readdirSync, readFileSync } from 'node:fs';
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
    // The protocol's zod-free constants module, not its zod frame schemas (frames.ts); the id formats without the id schemas
    // (the option checker's well-formed string test is the user id format's).
    expect(ours.filter((path) => !path.startsWith('src/client/') && !path.startsWith('src/errors/')).sort()).toEqual([
      'src/events/id-format.ts',
      'src/events/lifecycle.ts',
      'src/ids/cursor-format.ts',
      'src/ids/thread-id-format.ts',
      'src/ids/user-id-format.ts',
      'src/protocol/constants.ts',
    ]);
    expect(ours).not.toContain('src/client/node.ts');
    // Everything is inlined: nothing is left for the page to import.
    expect(code).not.toMatch(/^\s*import\s/m);
    // The close codes and the protocol version come from src/protocol, not from copies in the client.
    expect(code).toMatch(/TOKEN_EXPIRED: 4401/);
    expect(code).toMatch(/PROTOCOL_VERSION = 1/);
  });

  it('the Node convenience entry is the one that brings ws', async () => {
    const { inputs } = await browserBundle('src/client/node.ts');
    expect(inputs.some((path) => /(^|\/)node_modules\/ws\//.test(path))).toBe(true);
  });

  it('hard-codes no close code and no protocol version: they are imported from src/protocol', () => {
    const sources = readdirSync('src/client').map((file) => [file, readFileSync(`src/client/${file}`, 'utf8')] as const);
    for (const [file, text] of sources) {
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ''); // comments may name codes
      expect({ file, codes: code.match(/\b(1001|1003|1008|1009|1011|1013|40[0-9][0-9]|4401|4403)\b/g) }).toEqual({ file, codes: null });
      expect({ file, version: /\bv\s*!==\s*1\b/.test(code) }).toEqual({ file, version: false });
    }
  });
});
