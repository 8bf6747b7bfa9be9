/**
 * `node --import tsx test/docs/snippets-cli.ts`: typechecks the docs' TypeScript blocks in a
 * child process (the test runs it at low priority, beside timing-sensitive suites) and prints
 * `{ ms, errors: { [block]: string[] } }` as JSON.
 */
import { compileSnippets, typescriptBlocks } from './snippets.js';

const started = performance.now();
const errors = compileSnippets(typescriptBlocks());
console.log(JSON.stringify({ ms: Math.round(performance.now() - started), errors }));
