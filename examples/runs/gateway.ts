/**
 * A gateway process of the runs example: the run endpoints (`POST /runs`, `GET /runs/:id`,
 * `POST /runs/:id/cancel`) on the BullMQ run queue, and the SSE stream (`GET /events?threadId=`)
 * read from the Redis log. Any number run side by side: submit on one, follow and cancel on another.
 *
 * Env: REDIS_URL, AGENTWIRE_KEY_PREFIX, PORT (0: a free one), GATEWAY_NAME, MAX_RUNS_PER_USER (10).
 * Prints `{"type":"listening","url":…}`. SIGTERM/SIGINT: clean shutdown.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SseGateway } from '../../src/gateway/index.js';
import { RunsHandler } from '../../src/gateway/runs/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { RedisEventLog } from '../../src/transport/redis/index.js';
import { demoAuthenticate } from '../scale-out/auth.js';

const env = process.env;
const name = env.GATEWAY_NAME ?? `gateway-${process.pid}`;
const connection = { url: env.REDIS_URL ?? 'redis://127.0.0.1:6379', keyPrefix: env.AGENTWIRE_KEY_PREFIX ?? 'agentwire-example:' };
const queue = new BullMQRunQueue({ ...connection, maxRunsPerUser: Number(env.MAX_RUNS_PER_USER ?? 10) });
const log = new RedisEventLog(connection);
const runs = new RunsHandler({ queue, authenticate: demoAuthenticate, agents: ['steps'] });
const events = new SseGateway({ log, authenticate: demoAuthenticate });

const server = createServer((req, res) => {
  void runs.handle(req, res).then((handled) => {
    if (!handled && !events.handle(req, res)) res.writeHead(404).end();
  });
});
await queue.connect();
await new Promise<void>((resolve) => server.listen(Number(env.PORT ?? 0), '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;
console.log(JSON.stringify({ type: 'listening', name, url: `http://127.0.0.1:${port}`, pid: process.pid }));

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  runs.close();
  await events.close();
  server.close();
  await queue.close();
  await log.close();
  console.log(JSON.stringify({ type: 'closed', name }));
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown());
process.once('SIGINT', () => void shutdown());
