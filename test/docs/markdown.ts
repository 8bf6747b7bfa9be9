import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Generated (TypeDoc) output: not hand-written docs. */
const GENERATED = ['docs/api'];

/** README.md, the given top-level files, and every .md under docs/ (paths relative to the root, `/`-separated). */
export function markdownFiles(topLevel: readonly string[] = ['README.md']): string[] {
  const files = topLevel.filter((file) => existsSync(join(projectRoot, file)));
  const walk = (dir: string): void => {
    if (!existsSync(join(projectRoot, dir)) || GENERATED.includes(dir)) return;
    for (const entry of readdirSync(join(projectRoot, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) files.push(path);
    }
  };
  walk('docs');
  return files;
}

export function readMarkdown(file: string): string {
  return readFileSync(join(projectRoot, file), 'utf8');
}

export interface CodeBlock {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** The language (first word of the info string), lower-cased. */
  lang: string;
  /** The other words of the info string (`ts nocheck` → ['nocheck']). */
  flags: string[];
  code: string;
}

/** Fenced code blocks (``` or ~~~, CommonMark rules for the closing fence). */
export function codeBlocks(file: string, text = readMarkdown(file)): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = text.split('\n');
  let open: { fence: string; line: number; lang: string; flags: string[]; body: string[]; indent: number } | undefined;
  lines.forEach((raw, index) => {
    if (!open) {
      const start = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)(.*)$/.exec(raw);
      if (start) {
        const [, indent = '', fence = '', lang = '', rest = ''] = start;
        open = { fence, line: index + 1, lang: lang.toLowerCase(), flags: rest.trim().split(/\s+/).filter(Boolean), body: [], indent: indent.length };
      }
      return;
    }
    const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(raw);
    if (close && close[1]![0] === open.fence[0] && close[1]!.length >= open.fence.length) {
      blocks.push({ file, line: open.line, lang: open.lang, flags: open.flags, code: open.body.join('\n') });
      open = undefined;
      return;
    }
    // Content lines lose up to the fence's own indentation.
    open.body.push(raw.replace(new RegExp(`^ {0,${open.indent}}`), ''));
  });
  return blocks;
}

/** The text with fenced blocks blanked (line count kept), so links are only looked for in prose. */
export function withoutCodeBlocks(text: string): string {
  const lines = text.split('\n');
  let fence: string | undefined;
  return lines
    .map((line) => {
      if (!fence) {
        const start = /^ {0,3}(`{3,}|~{3,})/.exec(line);
        if (start) {
          fence = start[1];
          return '';
        }
        return line;
      }
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(line);
      if (close && close[1]![0] === fence[0] && close[1]!.length >= fence.length) fence = undefined;
      return '';
    })
    .join('\n');
}

/**
 * The anchors GitHub generates for a file's headings (lower case, punctuation dropped, spaces to
 * `-`, repeats numbered `-1`, `-2`…), plus explicit `<a name>`/`id` anchors.
 */
export function anchors(text: string): Set<string> {
  const found = new Set<string>();
  const counts = new Map<string, number>();
  for (const line of withoutCodeBlocks(text).split('\n')) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      const base = slug(heading[1]!);
      const seen = counts.get(base) ?? 0;
      counts.set(base, seen + 1);
      found.add(seen === 0 ? base : `${base}-${seen}`);
    }
    for (const match of line.matchAll(/<a\s[^>]*(?:name|id)="([^"]+)"/g)) found.add(match[1]!);
  }
  return found;
}

function slug(heading: string): string {
  const textOnly = heading
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1') // images: their alt text
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // links: their text
    .replace(/<[^>]+>/g, ''); // inline HTML
  return textOnly
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}
