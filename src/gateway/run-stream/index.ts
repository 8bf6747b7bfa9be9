/**
 * The HTTP surfaces that start runs and stream them from the log (AG-UI, useChat) share this:
 * `RunSurface` (admission, limits, origins, revoke, stats, shutdown, node and web responders),
 * `RunStreamSession` (one run's stream through the `Follower`, a surface's codec, a sink) and
 * `planResume` (the log decides where a resuming client is).
 */
export {
  RunSurface,
  type ContinueRequest,
  type RequestResponse,
  type RunResponder,
  type RunStartSpec,
  type RunSurfaceConfig,
  type RunSurfaceOptions,
  type ResumeTarget,
} from './surface.js';
export { RunStreamSession, type RunStreamCodec, type RunStreamEnd, type RunStreamPlan } from './session.js';
export type { MountedRunSurface } from './mounted.js';
export { planResume, latestActiveRun, type ResumePlan, type ResumePosition } from './resume.js';
