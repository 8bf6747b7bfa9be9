import type { OptionChecker } from '../errors/options.js';
import { shown } from '../errors/options.js';
import type { AgentBridge } from './agent-bridge.js';

/** The methods of an `AgentBridge` an agent's runs call (a bridge of another copy of the package passes too). */
export const BRIDGE_METHODS = ['openRun', 'claimRunId', 'abandonRun', 'trackRun', 'untrackRun', 'deliver', 'enqueueSerialized'] as const;

/**
 * `bridge` when it has the methods a run calls, else `ValidationError` `INVALID_OPTION`
 * (`<owner> option bridge must be an AgentBridge (got 5)`): a number or `null` failed the first run
 * with a `TypeError`.
 */
export function checkBridge(check: OptionChecker, option: string, bridge: unknown): AgentBridge {
  const methods = bridge as Record<string, unknown> | null;
  if (typeof bridge !== 'object' || methods === null || !BRIDGE_METHODS.every((name) => typeof methods[name] === 'function')) {
    throw check.fail(option, `must be an AgentBridge (got ${shown(bridge)})`);
  }
  return bridge as AgentBridge;
}
