/**
 * `node --import tsx test/package/typecheck-cli.ts <tsconfig.json>…`: the pack test's typechecks
 * in one child process (so a long check never blocks the test worker, and runs at low priority
 * next to the timing-sensitive suites). Prints `{ [tsconfig]: { errors, ms } }` as JSON.
 */
import { typecheck } from './pack-helpers.js';

const tsconfigs = process.argv.slice(2);
if (tsconfigs.length === 0) {
  console.error('usage: typecheck-cli.ts <tsconfig.json>…');
  process.exit(2);
}
console.log(JSON.stringify(Object.fromEntries(tsconfigs.map((tsconfig) => [tsconfig, typecheck(tsconfig)]))));
