import { describe, expect, it } from 'vitest';
import { RedisEventLog, RedisKeys, RedisStreamsTransport } from '../../src/transport/redis/index.js';
import { BullMQRunQueue } from '../../src/runs/bullmq/index.js';
import { keySlot, routingKey } from '../../src/transport/redis/cluster.js';

describe('Redis Cluster key layout and routing', () => {
  it('keeps the per-thread hash tag without slot groups, and one slot-group tag per thread with them', () => {
    const single = new RedisKeys('p:');
    expect(single.stream('t-1')).toBe('p:thread:{t-1}:events');
    expect(single.wake('gw')).toBe('p:gateway:gw:wake');
    const grouped = new RedisKeys('p:', 16);
    const group = grouped.group('t-1');
    expect(group).toBeGreaterThanOrEqual(0);
    expect(group).toBeLessThan(16);
    const keys = [grouped.stream('t-1'), grouped.meta('t-1'), grouped.requests('t-1'), grouped.wake('gw', group)];
    expect(keys[0]).toBe(`p:thread:{aw${group}}:t-1:events`);
    // Everything a script or a blocking read names together shares one slot.
    expect(new Set(keys.map(keySlot)).size).toBe(1);
    // Thread ids spread over every group.
    const groups = new Set(Array.from({ length: 500 }, (_, i) => grouped.group(`thread-${i}`)));
    expect(groups.size).toBe(16);
  });

  it('routes a command by its first key', () => {
    expect(routingKey(['EVALSHA', 'sha', '2', 'k1', 'k2', 'a'])).toBe('k1');
    expect(routingKey(['EVAL', 'src', '0', 'a'])).toBeUndefined();
    expect(routingKey(['XREAD', 'COUNT', '5', 'BLOCK', '10', 'STREAMS', 's1', 's2', '0-0', '0-0'])).toBe('s1');
    expect(routingKey(['HGET', 'meta', 'owner'])).toBe('meta');
    expect(routingKey(['PUBLISH', 'channel', 'x'])).toBeUndefined();
  });

  it('refuses an empty or malformed cluster option, bad slot groups and a key prefix with braces', () => {
    const bad: Array<[object, string]> = [
      [{ cluster: { rootNodes: [] } }, 'cluster.rootNodes'],
      [{ cluster: { rootNodes: ['127.0.0.1:7000'] } }, 'cluster.rootNodes'],
      [{ cluster: { rootNodes: ['redis://127.0.0.1:7000'], slotGroups: 0 } }, 'cluster.slotGroups'],
      [{ cluster: { rootNodes: ['redis://127.0.0.1:7000'], slotGroups: 2.5 } }, 'cluster.slotGroups'],
      [{ cluster: { rootNodes: ['redis://127.0.0.1:7000'] }, keyPrefix: '{app}:' }, 'keyPrefix'],
    ];
    for (const [options, field] of bad) {
      expect(() => new RedisEventLog(options)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', field }));
      expect(() => new RedisStreamsTransport(options)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', field }));
      expect(() => new BullMQRunQueue(options)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', field }));
    }
  });
});
