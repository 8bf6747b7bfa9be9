/**
 * zod 3.25 (classic `zod` and its `zod/v4`), next to the project's zod 4, to test that every schema
 * path works with both peer majors. It is the copy `@ag-ui/client` (a dev dependency) depends on,
 * so `npm ci` installs it; a missing or other copy fails loudly rather than testing zod 4 twice.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const dir = dirname(createRequire(require.resolve('@ag-ui/client')).resolve('zod/package.json'));
const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
if (!/^3\.(2[5-9]|[3-9]\d)\./.test(version)) throw new Error(`test/helpers/zod3: expected zod 3.25+ under @ag-ui/client, found ${version} in ${dir}`);

type Zod3 = typeof import('zod/v3');
type Zod4 = typeof import('zod/v4');
/** Classic zod 3 (`import { z } from 'zod'` on zod 3.25). */
export const z3: Zod3['z'] = ((await import(pathToFileURL(join(dir, 'index.js')).href)) as { z: Zod3['z'] }).z;
/** zod 3.25's `zod/v4`. */
export const z3v4: Zod4['z'] = ((await import(pathToFileURL(join(dir, 'v4', 'index.js')).href)) as { z: Zod4['z'] }).z;
export const zod3Version = version;
