import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';

/** The browser code the demo serves, built in memory at startup. */
export interface DemoBundles {
  /** `/agentwire-client.js`: `src/client` for browsers (ESM). */
  client: string;
  /** `/app.js`: the page script; it imports the client from `/agentwire-client.js`. */
  app: string;
}

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
export const CLIENT_ENTRY = root('src/client/index.ts');
export const APP_ENTRY = root('examples/web/app.ts');
/** URL the page imports the client from. */
export const CLIENT_URL = '/agentwire-client.js';

const nodeBuiltins = new Set([...builtinModules, ...builtinModules.map((name) => `node:${name}`)]);

/** Keeps the page's `import … from '../../src/client/index.js'` as an import of the served bundle. */
const clientAsExternal: Plugin = {
  name: 'agentwire-client-external',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /\/src\/client(\/index(\.[jt]s)?)?$/ }, () => ({ path: CLIENT_URL, external: true }));
  },
};

async function bundle(entry: string, plugins: Plugin[] = []): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins,
  });
  assertNoNodeBuiltins(entry, result.metafile);
  const output = result.outputFiles[0];
  if (!output) throw new Error(`esbuild produced no output for ${entry}`);
  return output.text;
}

/** With platform 'browser' esbuild already refuses unresolvable built-ins; this also catches externals. */
function assertNoNodeBuiltins(entry: string, metafile: Metafile): void {
  for (const output of Object.values(metafile.outputs)) {
    const offending = output.imports.filter((item) => nodeBuiltins.has(item.path)).map((item) => item.path);
    if (offending.length > 0) {
      throw new Error(`browser bundle of ${entry} imports Node built-ins: ${offending.join(', ')}`);
    }
  }
}

/** Builds the client bundle and the page script (esbuild JS API, ESM, platform browser). */
export async function buildDemoBundles(): Promise<DemoBundles> {
  const [client, app] = await Promise.all([bundle(CLIENT_ENTRY), bundle(APP_ENTRY, [clientAsExternal])]);
  return { client, app };
}
