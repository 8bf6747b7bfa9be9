/**
 * Every ```ts / ```typescript block of README.md, SECURITY.md, CHANGELOG.md and docs/**.md is typechecked (strict) against the
 * package's own sources: `agentwire` and each `agentwire/*` subpath map to src/ through `paths`
 * mirroring package.json `exports`. Each block is its own module (top-level await allowed).
 *
 * What a snippet leaves to the reader (your token verifier, your model, the agent defined further
 * up) is declared once, typed, in ./snippet-context.ts. A block that is deliberately not
 * compilable is fenced as ```ts nocheck; use that sparingly.
 *
 * The compile runs in a low-priority child process (./snippets-cli.ts), like the pack test's.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { run } from '../package/pack-helpers.js';
import { codeBlocks, projectRoot } from './markdown.js';
import { CONTEXT, NOCHECK, blockId, typescriptBlocks } from './snippets.js';

const blocks = typescriptBlocks();
const checked = blocks.filter((block) => !block.flags.includes(NOCHECK));
const skipped = blocks.filter((block) => block.flags.includes(NOCHECK));

let errors: Record<string, string[]>;

describe('TypeScript code blocks in the docs', () => {
  beforeAll(async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', join(projectRoot, 'test/docs/snippets-cli.ts')], projectRoot);
    const result = JSON.parse(stdout) as { ms: number; errors: Record<string, string[]> };
    errors = result.errors;
    console.info(`docs code blocks: ${checked.length} typechecked in ${result.ms} ms; nocheck: ${skipped.map(blockId).join(', ') || 'none'}`);
  }, 180_000);

  it('finds the blocks, indented ones and every fence form included', () => {
    expect(checked.filter((block) => block.file === 'README.md').length).toBeGreaterThan(0);
    const sample = ['```ts', 'a', '```', '  ~~~typescript nocheck', '  b', '  ~~~', '````ts', '```', 'c', '````'].join('\n');
    expect(codeBlocks('sample.md', sample).map((block) => [block.lang, block.flags, block.code])).toEqual([
      ['ts', [], 'a'],
      ['typescript', ['nocheck'], 'b'],
      ['ts', [], '```\nc'],
    ]);
  });

  it('the shared context for snippets compiles', () => {
    expect(errors[CONTEXT]).toEqual([]);
  });

  it.each(checked.map((block) => [blockId(block), block] as const))('%s compiles', (id) => {
    expect(errors[id]).toEqual([]);
  });
});
