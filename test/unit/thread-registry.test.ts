import { describe, expect, it } from 'vitest';
import { AuthError, ThreadRegistry, ThreadResolutionError, generateRunId } from '../../src/index.js';

/** Two runs of mallory registered on thread 't' (the first started), neither delivered: her starts waiting for the log. */
function malloryStarts(registry: ThreadRegistry): [string, string] {
  const m1 = generateRunId('t');
  const m2 = generateRunId('t');
  registry.register(m1, 't', 'mallory');
  registry.markStarted(m1);
  registry.register(m2, 't', 'mallory');
  return [m1, m2];
}

describe('ThreadRegistry', () => {
  it('resolves from the registry first, for custom run ids too', () => {
    const registry = new ThreadRegistry();
    registry.register('custom-run-1', 'thread-a', 'alice');
    expect(registry.resolve('custom-run-1')).toEqual({ runId: 'custom-run-1', threadId: 'thread-a', userId: 'alice', source: 'registry' });
  });

  it('falls back to parsing a standard run id, with the owner when the thread is known', () => {
    const registry = new ThreadRegistry();
    const bobs = generateRunId('thread_b');
    registry.register(bobs, 'thread_b', 'bob');
    registry.delivered(bobs, 'thread_b', 'bob'); // the owner is known once a run of it delivered
    const unregistered = generateRunId('thread_b');
    expect(registry.resolve(unregistered)).toMatchObject({ threadId: 'thread_b', userId: 'bob', source: 'run_id' });
    expect(registry.resolve(generateRunId('x_run_y'))).toMatchObject({ threadId: 'x_run_y', userId: undefined });
  });

  it('a registered run id is in use once its run started or finished, not before', () => {
    let now = 0;
    const registry = new ThreadRegistry({ finishedRunTtlMs: 10, now: () => now });
    registry.register('r1', 't', 'alice');
    expect([registry.has('r1'), registry.isUsed('r1')]).toEqual([true, false]);
    registry.markStarted('r1');
    expect(registry.isUsed('r1')).toBe(true);
    registry.register('r2', 't', 'alice');
    registry.finish('r2');
    expect(registry.isUsed('r2')).toBe(true);
    now = 100;
    registry.sweep();
    expect([registry.isUsed('r1'), registry.isUsed('r2'), registry.has('r2')]).toEqual([true, false, false]);
    registry.markStarted('unknown'); // no entry: nothing to mark
    expect(registry.isUsed('unknown')).toBe(false);
  });

  it('throws ThreadResolutionError instead of falling back to the run id itself', () => {
    const registry = new ThreadRegistry();
    for (const bad of ['run-123', 'thread_a_run_b', 'thread_a']) {
      expect(() => registry.resolve(bad)).toThrow(ThreadResolutionError);
    }
    expect(registry.resolutionFailures).toBe(3);
  });

  it('keeps many runs per thread and refuses a run of another user on an owned thread', () => {
    const registry = new ThreadRegistry();
    const runs = Array.from({ length: 5 }, () => generateRunId('shared'));
    for (const runId of runs) registry.register(runId, 'shared', 'alice');
    registry.delivered(runs[0]!, 'shared', 'alice');
    expect(registry.size).toEqual({ runs: 5, threads: 1 });
    expect(() => registry.register(generateRunId('shared'), 'shared', 'mallory')).toThrow(AuthError);
    expect(registry.ownerOf('shared')).toBe('alice');
  });

  it('evicts finished runs after their TTL and idle threads after theirs', () => {
    let now = 1_000;
    const registry = new ThreadRegistry({ finishedRunTtlMs: 100, threadTtlMs: 1_000, now: () => now });
    const runId = generateRunId('t1');
    registry.register(runId, 't1', 'alice');
    registry.finish(runId);
    now += 99;
    registry.sweep();
    expect(registry.resolve(runId).source).toBe('registry');
    now += 1;
    registry.sweep();
    expect(registry.resolve(runId).source).toBe('run_id');
    expect(registry.size.runs).toBe(0);
    now += 1_000;
    registry.sweep();
    expect(registry.size.threads).toBe(0);
    expect(registry.ownerOf('t1')).toBeUndefined();
  });

  it('stays within maxRuns, forgetting finished runs first', () => {
    const registry = new ThreadRegistry({ maxRuns: 10 });
    const active = generateRunId('active');
    registry.register(active, 'active', 'u');
    for (let i = 0; i < 100; i++) {
      const runId = generateRunId(`t${i}`);
      registry.register(runId, `t${i}`, 'u');
      registry.finish(runId);
    }
    expect(registry.size.runs).toBeLessThanOrEqual(10);
    expect(registry.resolve(active).source).toBe('registry');
    expect(registry.evictions).toBeGreaterThan(0);
  });

  it('forget() drops a run as if never registered, and the thread owner only when nothing but forgotten runs established it', () => {
    const registry = new ThreadRegistry();
    // Mallory's two refused starts made the thread's only entries: forgetting both frees the thread.
    const [m1, m2] = malloryStarts(registry);
    registry.forget(m1);
    expect(registry.has(m1)).toBe(false);
    expect(registry.isUsed(m1)).toBe(false);
    expect(registry.size).toEqual({ runs: 1, threads: 1 }); // m2 still holds the entry (no owner: nothing delivered)
    expect(registry.ownerOf('t')).toBeUndefined();
    registry.forget(m2);
    expect(registry.ownerOf('t')).toBeUndefined();
    expect(registry.size).toEqual({ runs: 0, threads: 0 });
    const a1 = generateRunId('t');
    registry.register(a1, 't', 'alice');
    registry.delivered(a1, 't', 'alice');
    // A thread that another run (active or finished) delivered on keeps its owner.
    const a2 = generateRunId('t');
    registry.register(a2, 't', 'alice');
    registry.forget(a2);
    expect(registry.ownerOf('t')).toBe('alice');
    registry.finish(a1);
    const a3 = generateRunId('t');
    registry.register(a3, 't', 'alice');
    registry.forget(a3);
    registry.forget(a3); // idempotent
    registry.forget('never-registered');
    expect(registry.ownerOf('t')).toBe('alice');
    expect(() => registry.register(generateRunId('t'), 't', 'mallory')).toThrow(AuthError);
  });

  it('forget() keeps the owner of a thread whose earlier runs the registry no longer remembers', () => {
    let now = 0;
    const registry = new ThreadRegistry({ finishedRunTtlMs: 10, now: () => now });
    const a1 = generateRunId('t');
    registry.register(a1, 't', 'alice');
    registry.delivered(a1, 't', 'alice');
    registry.finish(a1);
    now += 100;
    registry.sweep();
    expect(registry.has(a1)).toBe(false);
    const a2 = generateRunId('t');
    registry.register(a2, 't', 'alice');
    registry.forget(a2);
    expect(registry.ownerOf('t')).toBe('alice');
  });

  it('forget() leaves a run any event of which was delivered, and the owner it established', () => {
    const registry = new ThreadRegistry();
    // A run that delivered events, then a second start of it refused (its queue had been swept).
    const a1 = generateRunId('t');
    registry.register(a1, 't', 'alice');
    registry.markStarted(a1);
    registry.delivered(a1, 't', 'alice');
    registry.forget(a1);
    expect(registry.has(a1)).toBe(true);
    expect(registry.isUsed(a1)).toBe(true);
    expect(registry.ownerOf('t')).toBe('alice');
    expect(() => registry.register(generateRunId('t'), 't', 'mallory')).toThrow(AuthError);
    // A run forgotten after its refused start whose later held event was delivered after all: the
    // delivery establishes the owner again (the transport took it as the thread's).
    const b1 = generateRunId('u');
    registry.register(b1, 'u', 'bob');
    registry.forget(b1);
    expect(registry.ownerOf('u')).toBeUndefined();
    registry.delivered(b1, 'u', 'bob');
    expect(registry.ownerOf('u')).toBe('bob');
    const b2 = generateRunId('u');
    registry.register(b2, 'u', 'bob');
    registry.forget(b2);
    expect(registry.ownerOf('u')).toBe('bob');
    // A delivery never takes a thread the registry knows another owner of.
    registry.delivered(generateRunId('u'), 'u', 'mallory');
    expect(registry.ownerOf('u')).toBe('bob');
  });

  it('an undelivered run does not claim its thread against another user: only a delivered run (the log took it) does', () => {
    const registry = new ThreadRegistry();
    // Mallory's starts on a thread this registry has no owner of, in flight (the log has not answered).
    const [m1, m2] = malloryStarts(registry);
    expect(registry.ownerOf('t')).toBeUndefined();
    // Alice's start meanwhile is not refused here: the log decides, and it refuses mallory's.
    const a1 = generateRunId('t');
    expect(() => registry.register(a1, 't', 'alice')).not.toThrow();
    registry.markStarted(a1);
    expect(registry.resolve(a1)).toMatchObject({ threadId: 't', userId: 'alice', source: 'registry' });
    expect(registry.resolve(generateRunId('t')).userId).toBeUndefined();
    registry.forget(m1);
    registry.delivered(a1, 't', 'alice');
    expect(registry.ownerOf('t')).toBe('alice');
    // From then on another user's start is refused early, and forgetting its in-flight run changes nothing.
    expect(() => registry.register(generateRunId('t'), 't', 'mallory')).toThrow(AuthError);
    registry.forget(m2);
    expect(registry.ownerOf('t')).toBe('alice');
    expect(registry.resolve(generateRunId('t')).userId).toBe('alice');
    registry.finish(a1);
    expect(registry.ownerOf('t')).toBe('alice');
    expect(() => registry.register(generateRunId('t'), 't', 'mallory')).toThrow(AuthError);
    // A delivery of the run forgotten meanwhile does not take the thread from its owner.
    registry.delivered(m1, 't', 'mallory');
    expect(registry.ownerOf('t')).toBe('alice');
  });
});

describe('ThreadRegistry with claimOnRegister (a transport that does not check owners)', () => {
  it("a registered run claims a thread with no owner against other users until it delivers or is forgotten", () => {
    const registry = new ThreadRegistry({ claimOnRegister: true });
    const a1 = generateRunId('t');
    registry.register(a1, 't', 'alice');
    expect(() => registry.register(generateRunId('t'), 't', 'mallory')).toThrow(AuthError);
    expect(registry.ownerOf('t')).toBe('alice');
    expect(registry.resolve(generateRunId('t')).userId).toBe('alice');
    // Alice's start refused for good (e.g. RUN_ID_CONFLICT): forgotten, the claim goes with it.
    registry.forget(a1);
    expect(registry.ownerOf('t')).toBeUndefined();
    const m1 = generateRunId('t');
    registry.register(m1, 't', 'mallory');
    expect(() => registry.register(generateRunId('t'), 't', 'alice')).toThrow(AuthError);
    registry.delivered(m1, 't', 'mallory');
    registry.finish(m1);
    expect(() => registry.register(generateRunId('t'), 't', 'alice')).toThrow(AuthError);
    expect(registry.ownerOf('t')).toBe('mallory');
  });

  it('without it (the default) the same registrations refuse nobody until a run delivers', () => {
    const registry = new ThreadRegistry();
    registry.register(generateRunId('t'), 't', 'alice');
    expect(() => registry.register(generateRunId('t'), 't', 'mallory')).not.toThrow();
    expect(registry.ownerOf('t')).toBeUndefined();
  });
});
