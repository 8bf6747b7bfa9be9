/**
 * Run in a child process by websocket-limits.test.ts: a gateway, a bridge, an agent, a real
 * client and a raw socket that never closes itself. After `close()` calls the process must exit
 * on its own: no timer, socket or immediate of the gateway may keep it alive.
 */
import WebSocket from 'ws';
import { AgentBridge, MemoryTransport } from '../../src/index.js';
import { connect } from '../../src/client/node.js';
import { WebSocketGateway } from '../../src/transport/websocket/index.js';
import { ScriptedAgent } from './agents.js';
import { authenticate, tokenOf } from './ws-harness.js';

const transport = new MemoryTransport();
const gateway = new WebSocketGateway({ authenticate, transport, heartbeatIntervalMs: 1_000, subscribeTimeoutMs: 60_000 });
const { url } = await gateway.listen(0, '127.0.0.1');
const bridge = new AgentBridge({ transport: gateway });
await bridge.initialize();
const agent = new ScriptedAgent({ bridge });

const idle = new WebSocket(`${url}?token=${tokenOf('idle')}`);
const idleClose = new Promise<number>((resolve) => idle.once('close', resolve));
await new Promise((resolve) => idle.once('open', resolve));
const client = connect(url, { token: tokenOf('alice'), threadId: 't' });
let received = 0;
client.on('event', () => received++);
await agent.run([{ think: 'hello' }, { tool: 'echo', args: { text: 'x' } }], { userId: 'alice', threadId: 't' });
for (let i = 0; i < 400 && received < 5; i++) await new Promise((resolve) => setTimeout(resolve, 5));

client.close();
await bridge.close(); // closes the gateway (its transport), which closes every socket with 1001
await transport.close();
console.log(`received=${received} idleClose=${await idleClose}`);
