import { createClient } from 'redis';

/**
 * Whether a Redis answers PING at `url` within `timeoutMs`, with the reason when it does not.
 * Opens and closes a connection of its own (no retries): for startup checks, tests and tools.
 */
export async function probeRedis(url: string, timeoutMs = 1_500): Promise<{ ok: true } | { ok: false; reason: string }> {
  const client = createClient({ url, socket: { connectTimeout: timeoutMs, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    return { ok: true };
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** Deletes every key under `prefix` (SCAN + UNLINK in pages); returns how many were deleted. */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<number> {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => undefined);
  let deleted = 0;
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = (await client.sendCommand(['SCAN', cursor, 'MATCH', `${prefix}*`, 'COUNT', '1000'])) as [string, string[]];
      cursor = next;
      if (keys.length > 0) deleted += Number(await client.sendCommand(['UNLINK', ...keys]));
    } while (cursor !== '0');
  } finally {
    if (client.isOpen) client.destroy();
  }
  return deleted;
}
