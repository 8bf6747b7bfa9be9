/**
 * What a text hook of a run-stream surface returned (AG-UI `answerText`, useChat `resultText` and
 * `errorText`), if it is a string (or undefined where `optional`); a `TypeError` naming the hook
 * otherwise, which the mapper contains like a throw of the hook itself.
 */
export function hookText(text: unknown, hook: string, optional: boolean): string | undefined {
  if (typeof text === 'string' || (optional && text === undefined)) return text as string | undefined;
  throw new TypeError(`${hook} returned ${text === null ? 'null' : typeof text}, not a string${optional ? ' or undefined' : ''}`);
}
