/**
 * Every relative link in README.md, SECURITY.md and docs/**.md resolves: the file (or folder)
 * exists, and an anchor exists too (a heading's GitHub anchor in a markdown file, `#L10` within a
 * source file's lines). External links (http:, mailto:…) are not fetched.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { anchors, markdownFiles, projectRoot, readMarkdown, withoutCodeBlocks } from './markdown.js';

interface Link {
  line: number;
  target: string;
}

/** Inline links and images, reference definitions, and HTML href/src, outside code. */
function links(text: string): Link[] {
  const found: Link[] = [];
  withoutCodeBlocks(text)
    .split('\n')
    .forEach((raw, index) => {
      const line = raw.replace(/(`+)[\s\S]*?\1/g, (span) => ' '.repeat(span.length)); // inline code spans
      const push = (target: string | undefined) => target && found.push({ line: index + 1, target: target.trim() });
      // [text](target "title") / ![alt](<target>)
      for (const match of line.matchAll(/\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+["'(][^)]*)?\)/g)) push(match[1]!.replace(/^<|>$/g, ''));
      // [label]: target
      const definition = /^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(line);
      if (definition) push(definition[1]!.replace(/^<|>$/g, ''));
      for (const match of line.matchAll(/<(?:a|img|source)\s[^>]*(?:href|src)="([^"]+)"/g)) push(match[1]);
    });
  return found;
}

const EXTERNAL = /^[a-z][a-z0-9+.-]*:/i; // http:, https:, mailto:, data:…

function problem(file: string, link: Link): string | undefined {
  const { target } = link;
  if (EXTERNAL.test(target) || target.startsWith('//')) return undefined;
  const [pathPart = '', anchor] = target.split('#', 2) as [string, string | undefined];
  const path = decodeURIComponent(pathPart.split('?')[0]!);
  const resolved = path === '' ? join(projectRoot, file) : path.startsWith('/') ? join(projectRoot, path) : normalize(join(projectRoot, dirname(file), path));
  const where = `${file}:${link.line} → ${target}`;
  if (relative(projectRoot, resolved).startsWith('..')) return `${where}: points outside the repository`;
  if (!existsSync(resolved)) return `${where}: no such file`;
  if (!anchor) return undefined;
  if (statSync(resolved).isDirectory()) return `${where}: an anchor on a folder`;
  if (resolved.endsWith('.md')) {
    const known = anchors(readFileSync(resolved, 'utf8'));
    return known.has(anchor.toLowerCase()) ? undefined : `${where}: no heading with anchor #${anchor} (has: ${[...known].slice(0, 12).join(', ')}…)`;
  }
  const lines = /^L(\d+)(?:-L(\d+))?$/.exec(anchor);
  if (lines) {
    const count = readFileSync(resolved, 'utf8').split('\n').length;
    const last = Number(lines[2] ?? lines[1]);
    return last <= count ? undefined : `${where}: the file has ${count} lines`;
  }
  return undefined;
}

const files = markdownFiles(['README.md', 'SECURITY.md', 'CHANGELOG.md']);

describe('relative links in the docs', () => {
  it('reads README and SECURITY', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'SECURITY.md']));
  });

  it('finds links (and the extractor sees every form)', () => {
    const sample = [
      '[a](docs/x.md) ![b](<img one.png> "title") <a href="c.md#d">c</a>',
      '[ref]: ./e.md',
      '`[not](a-link.md)`',
      '```',
      '[not](in-code.md)',
      '```',
    ].join('\n');
    expect(links(sample).map((link) => link.target)).toEqual(['docs/x.md', 'img one.png', 'c.md#d', './e.md']);
    expect(files.flatMap((file) => links(readMarkdown(file))).length).toBeGreaterThan(0);
  });

  it.each(files)('%s: every relative link resolves', (file) => {
    const problems = links(readMarkdown(file))
      .map((link) => problem(file, link))
      .filter((found): found is string => found !== undefined);
    expect(problems).toEqual([]);
  });
});
