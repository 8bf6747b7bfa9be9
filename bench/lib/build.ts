import { build } from 'esbuild';
import { join } from 'node:path';
import { ROOT } from './root.js';

/** Where the compiled bench goes (inside the repository, so that `node_modules` resolves from it). */
export const BUILD_DIR = join(ROOT, 'bench', '.build');

/** The bench's entry points: the runner and the scripts of its child processes. */
const ENTRIES = {
  main: 'bench/main.ts',
  'hot-path': 'bench/hot-path.ts',
  'heap-per-connection': 'bench/heap-per-connection.ts',
  'clients/ws-clients': 'bench/clients/ws-clients.ts',
  'servers/memory-server': 'bench/servers/memory-server.ts',
  'workers/redis-worker': 'bench/workers/redis-worker.ts',
  'workers/runs-worker': 'bench/workers/runs-worker.ts',
};

/**
 * Compiles the bench and the library into plain ES modules, the way the package ships (`tsc`
 * output: no helpers wrapped around functions). Under `tsx`, esbuild's `keepNames` wraps every
 * function created at run time in a `__name()` call that redefines its `name`: each such
 * closure then carries an extra ~256-byte property store and a call, which would be billed to
 * agentwire (≈ 2 KiB of heap per gateway connection, and per-event calls in the client).
 * Dependencies stay external and load from node_modules as in production.
 */
export async function buildBench(): Promise<string> {
  await build({
    absWorkingDir: ROOT,
    entryPoints: ENTRIES,
    outdir: BUILD_DIR,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    keepNames: false,
    logLevel: 'warning',
  });
  return BUILD_DIR;
}

/** The compiled file of a bench script (`bench/clients/ws-clients.ts` → `<build>/clients/ws-clients.js`). */
export function compiledScript(script: string): string {
  return join(BUILD_DIR, script.replace(/^bench\//, '').replace(/\.ts$/, '.js'));
}
