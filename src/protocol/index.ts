export * from './constants.js';
export * from './frames.js';
export { tokenFrom, type Authenticate, type Principal } from './auth.js';
