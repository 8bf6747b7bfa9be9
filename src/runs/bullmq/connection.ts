import { createClient, createCluster } from 'redis';
import type { ResolvedQueueOptions } from './options.js';

/**
 * A node-redis connection for BullMQ (which wraps it in its node-redis adapter) and for the
 * workers' cancel subscription: a client, or on a Redis Cluster a cluster client.
 *
 * BullMQ 6.7's node-redis adapter treats every client as a single server (`isCluster` is false)
 * and waits for a `ready` event before using a connection it duplicated (the worker's blocking
 * connection); a node-redis cluster emits `connect` once its topology is known, never `ready`,
 * so that wait would never end. The cluster clients made here also emit `ready` on `connect`,
 * and so do their duplicates. Every key BullMQ touches is under the queue's hash tag
 * (`<prefix>{<queue>}:…`), so each of its commands and scripts goes to the one master of that slot.
 */
export type BullConnection = ReturnType<typeof createClient> | ReturnType<typeof createCluster>;

export function bullConnection(options: ResolvedQueueOptions, name: string): BullConnection {
  if (!options.cluster) return createClient({ ...options.clientOptions, url: options.url, name });
  const { url: _url, ...nodeOptions } = options.clientOptions ?? {};
  return readyOnConnect(
    createCluster({
      rootNodes: options.cluster.rootNodes.map((url) => ({ url })),
      defaults: { ...nodeOptions, name } as never,
    }),
  );
}

interface Duplicable {
  on(event: 'connect', listener: () => void): unknown;
  emit(event: 'ready'): boolean;
  duplicate(...args: never[]): unknown;
}

function readyOnConnect<C extends Duplicable>(cluster: C): C {
  cluster.on('connect', () => cluster.emit('ready'));
  const duplicate = cluster.duplicate.bind(cluster) as (...args: unknown[]) => C;
  (cluster as { duplicate: unknown }).duplicate = (...args: unknown[]) => readyOnConnect(duplicate(...args));
  return cluster;
}
