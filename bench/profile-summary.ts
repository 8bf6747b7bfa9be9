/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`): self time per function, heaviest first.
 * `npx tsx bench/profile-summary.ts <file.cpuprofile> [top=40] [filter]`
 * How the WebSocket fan-out was profiled is described in docs/performance.md.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topText, filter] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary <file.cpuprofile> [top] [filter]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const totals = new Map<string, number>();
let all = 0;
for (const [id, us] of selfUs) {
  const { callFrame } = byId.get(id)!;
  const where = callFrame.url ? `${callFrame.url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${callFrame.lineNumber + 1}` : '';
  const key = `${callFrame.functionName || '(anonymous)'} ${where}`.trim();
  totals.set(key, (totals.get(key) ?? 0) + us);
  all += us;
}
const rows = [...totals].filter(([key]) => !filter || key.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, Number(topText ?? 40));
console.log(`total ${(all / 1000).toFixed(0)} ms sampled`);
for (const [key, us] of rows) console.log(`${((us / all) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
