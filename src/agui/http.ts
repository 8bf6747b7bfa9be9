import type { HttpErrorBody } from '../protocol/http.js';

/** The JSON body of every refused AG-UI request: `{ "error": { "code", "message", "field"? } }`. */
export type AguiErrorBody = HttpErrorBody;
