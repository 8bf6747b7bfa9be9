import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateLifecycle } from '../../src/index.js';
import { RawClient, follow, startGateway, until } from '../helpers/ws-harness.js';

const threadId = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/);
const validFrame = fc.oneof(
  fc.record({ type: fc.constant('subscribe'), threadId, after: fc.string({ minLength: 1, maxLength: 40 }) }),
  fc.record({ type: fc.constant('unsubscribe'), threadId }),
  fc.record({ type: fc.constant('ack'), threadId, cursor: fc.string({ minLength: 1, maxLength: 40 }) }),
);
const wrongValue = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.constant(''));

/** Frames that are invalid by construction (no parser needed to know), as text or binary. */
const invalidFrame: fc.Arbitrary<string | Buffer> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }).filter((text) => {
    try {
      JSON.parse(text);
      return false;
    } catch {
      return true;
    }
  }),
  fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 50 }), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 })).map((value) => JSON.stringify(value)),
  fc.record({ type: fc.string({ maxLength: 30 }).filter((t) => !['subscribe', 'unsubscribe', 'ack'].includes(t)), threadId }).map((value) => JSON.stringify(value)),
  fc.tuple(validFrame, wrongValue).map(([frame, value]) => {
    const field = Object.keys(frame).find((key) => key !== 'type')!;
    return JSON.stringify({ ...frame, [field]: value });
  }),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
);

describe('WebSocketGateway under arbitrary client frames (property)', () => {
  it('never crashes, answers every invalid frame with exactly one error frame, and keeps serving other users', async () => {
    const harness = await startGateway({ maxInvalidFrames: 1_000_000, rateLimit: { framesPerSecond: 1_000_000, burst: 1_000_000 } });
    try {
      const { url, agent, transport, gateway } = harness;
      const bob = follow(url, 'bob', 'bob-thread');
      await until(() => bob.client.status === 'open', 'bob open');
      const fuzzer = await RawClient.open(url, 'eve');
      let sent = 0;
      let bobRuns = 0;

      await fc.assert(
        fc.asyncProperty(fc.array(invalidFrame, { minLength: 1, maxLength: 20 }), async (frames) => {
          const before = fuzzer.ofType('error').length;
          for (const frame of frames) fuzzer.ws.send(frame, { binary: typeof frame !== 'string' });
          sent += frames.length;
          // Bob's run goes on concurrently with the abuse.
          bobRuns++;
          await agent.run([{ think: 'busy' }, { tool: 'echo', args: { text: 'ok' } }], { userId: 'bob', threadId: 'bob-thread' });
          await fuzzer.waitFor(() => fuzzer.ofType('error').length >= before + frames.length, 'error frames');
          expect(fuzzer.ofType('error')).toHaveLength(before + frames.length);
        }),
        { numRuns: 40 },
      );

      expect(fuzzer.closed).toBeUndefined();
      // Nothing but the hello and error frames was ever sent to the fuzzer.
      expect(fuzzer.frames.filter((frame) => frame.type !== 'error' && frame.type !== 'hello')).toEqual([]);
      expect(gateway.stats().invalidFrames).toBe(sent);
      await until(() => bob.events.length === bobRuns * 5, "all of bob's runs");
      expect(bob.events.map((e) => e.id)).toEqual(transport.read('bob-thread', 'bob').map((e) => e.id));
      expect(validateLifecycle(bob.events)).toEqual({ ok: true, runs: bobRuns });
      bob.client.close();
      fuzzer.close();
    } finally {
      await harness.stop();
    }
  });
});
