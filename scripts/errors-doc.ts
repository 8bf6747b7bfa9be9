/**
 * `npm run docs:errors`: writes docs/errors.md from `ERROR_CATALOG`, so the table of error codes
 * is the catalog (test/unit/errors-doc.test.ts fails when the file is stale). `--check` only
 * compares and exits 1 when the file differs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ERROR_CATALOG, type ErrorClassName, type ErrorCode } from '../src/errors/catalog.js';

export const ERRORS_DOC = fileURLToPath(new URL('../docs/errors.md', import.meta.url));

/** What each class stands for, in the order the page lists them (the catalog's own order of owners). */
const CLASSES: Record<ErrorClassName, string> = {
  ValidationError: 'Input that does not match a schema or format: events, run and thread ids, options, request bodies. `field` names the first failing field when the input was structured.',
  ThreadResolutionError: 'A run id resolves neither through the `ThreadRegistry` nor by parsing it. Nothing is delivered to a guessed target.',
  DeliveryError: 'An event that was neither delivered nor buffered; the bridge counts it. `causeCode` is the code of the underlying error.',
  TransportError: 'A transport, a log or the client connection failed. Retryable (`retryable: true`) unless stated otherwise.',
  ToolError: 'A tool call failed. `tool` names the tool.',
  ToolTimeoutError: 'A tool call exceeded its `timeoutMs`; its signal was aborted.',
  AuthError: 'Authentication failed, or a principal reached for something it does not own.',
  AbortError: "A run or an operation was cancelled through its `AbortSignal` (named like the DOM's).",
  HistoryGapError: 'A resume cursor cannot be honoured completely: the client decides what to do (`history_gap`).',
  StateError: 'An operation used in the wrong state: outside a run, on a closed bridge or gateway.',
  GatewayError: 'What a front end refuses or reports: `error` frames, close codes, HTTP refusals. `headers` carries `Allow`, `Retry-After`, ….',
};

function escape(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The page, generated from the catalog. */
export function renderErrorsDoc(): string {
  const byOwner = new Map<ErrorClassName, ErrorCode[]>();
  for (const code of Object.keys(ERROR_CATALOG) as ErrorCode[]) {
    const owner = ERROR_CATALOG[code].owner;
    byOwner.set(owner, [...(byOwner.get(owner) ?? []), code]);
  }
  const lines = [
    '<!-- Generated from ERROR_CATALOG (src/errors/catalog.ts) by `npm run docs:errors`. Do not edit by hand. -->',
    '',
    '# Error codes',
    '',
    'Every error agentwire raises is an `AgentwireError` with a stable `code` from one catalog,',
    '`ERROR_CATALOG`: clients and apps switch on the code, messages are for humans and may change. Each',
    'code is owned by exactly one error class (`new ValidationError(…, { code })` accepts only',
    "`ValidationError`'s codes: the types refuse another, and so does the constructor at run time with a",
    '`TypeError`, for plain JavaScript), so `instanceof` and `code` always agree;',
    '`errorFromCode(code, message)` builds the owning class for a code known only at run time (read off',
    'the wire).',
    '',
    'An HTTP surface answers any `AgentwireError` with the status below and the body',
    '`{ "error": { "code", "message", "field"? } }`; any other error becomes `INTERNAL_ERROR` (500) with',
    'its details withheld. `httpStatusOf(code)` gives the status, `isErrorCode(value)` checks a string.',
    '',
    `${Object.keys(ERROR_CATALOG).length} codes, ${byOwner.size} classes:`,
    '',
    ...[...byOwner.keys()].map((owner) => `- [\`${owner}\`](#${owner.toLowerCase()}) (${byOwner.get(owner)!.length})`),
  ];
  for (const [owner, codes] of byOwner) {
    lines.push('', `## ${owner}`, '', CLASSES[owner], '', '| code | HTTP | meaning |', '| --- | --- | --- |');
    for (const code of codes) {
      const entry = ERROR_CATALOG[code];
      lines.push(`| \`${code}\` | ${entry.status} | ${escape(entry.summary)} |`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function current(): string | undefined {
  try {
    return readFileSync(ERRORS_DOC, 'utf8');
  } catch {
    return undefined;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = renderErrorsDoc();
  if (process.argv.includes('--check')) {
    if (current() !== text) {
      console.error('docs/errors.md is stale: run `npm run docs:errors`');
      process.exit(1);
    }
  } else {
    writeFileSync(ERRORS_DOC, text);
    console.log(`docs/errors.md: ${Object.keys(ERROR_CATALOG).length} codes`);
  }
}
