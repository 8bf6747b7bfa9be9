/**
 * docs/scaling.md says `npm run capacity` recomputes every number of its tables from
 * bench/results/latest.json: the tables between its capacity markers must be exactly what the
 * script prints from the results committed beside them (a new bench run without
 * `npm run capacity -- --update-docs` fails here).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { projectRoot } from './markdown.js';

const BEGIN = '<!-- capacity:begin (npm run capacity -- --update-docs) -->';
const END = '<!-- capacity:end -->';

describe('docs/scaling.md', () => {
  it('holds the capacity tables the script computes from bench/results/latest.json', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(projectRoot, 'scripts/capacity.ts'), '--markdown'], { cwd: projectRoot });
    const text = readFileSync(join(projectRoot, 'docs/scaling.md'), 'utf8');
    const from = text.indexOf(BEGIN);
    const to = text.indexOf(END);
    expect(from).toBeGreaterThanOrEqual(0);
    expect(to).toBeGreaterThan(from);
    expect(text.slice(from + BEGIN.length, to).trim()).toBe(stdout.trim());
  });
});
