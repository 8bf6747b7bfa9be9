export * from './constants.js';
export * from './frames.js';
// The auth hook moved to the front-end contract (src/gateway/auth.ts); re-exported here so the
// root entry keeps `tokenFrom`, `Authenticate` and `Principal` until the public surface is redrawn.
export { tokenFrom, type Authenticate, type AuthRequest, type Principal } from '../gateway/auth.js';
export type { HeaderReader } from '../gateway/request.js';
