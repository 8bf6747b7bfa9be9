/** @deprecated Moved to `src/gateway/websocket/expiry-queue.ts` (internal). */
export { ExpiryQueue, type Expiring } from '../../gateway/websocket/expiry-queue.js';
