import { cpus, totalmem } from 'node:os';

/** One printed row: a measured figure, optionally compared with a baseline from the same run. */
export interface BenchRow {
  suite: string;
  case: string;
  /** Main figure and its unit, e.g. 812_000 'events/s'. */
  value: number;
  unit: string;
  /** Same-run baseline figure (same unit), when the row has one. */
  baseline?: number;
  baselineName?: string;
  /** value / baseline, or a target-specific ratio. */
  ratio?: number;
  /** The target this row is held against, as text (e.g. "≥ 0.8× raw ws"). */
  target?: string;
  /** Whether the target was met (undefined when there is no target). */
  met?: boolean;
  notes?: string;
  /** Server CPU (user + system) per delivered event, µs, of this row's server and of its baseline (fan-out rows). */
  cpuUs?: number;
  baselineCpuUs?: number;
  /** Fan-out rows: this row's rate over Socket.IO's in the same run. */
  vsSocketIo?: number;
  /** Set when the row could not be measured here (e.g. "no Redis"): printed instead of a figure; `value` is NaN. */
  skipped?: string;
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  platform: string;
  date: string;
}

export function machine(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: new Date().toISOString(),
  };
}

export function formatNumber(value: number, unit: string): string {
  if (!Number.isFinite(value)) return '–';
  if (unit === 'ms' || unit === 'KiB') return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(3);
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return value.toFixed(value >= 10 ? 0 : 2);
}

/** Renders rows as a Markdown table (readable in a terminal and pasteable into README). */
export function renderTable(rows: BenchRow[]): string {
  const header = ['suite', 'case', 'result', 'baseline (same run)', 'ratio', 'server CPU µs/event (baseline)', 'target'];
  const lines = rows.map((row) => [
    row.suite,
    row.case,
    row.skipped !== undefined ? `skipped (${row.skipped})` : `${formatNumber(row.value, row.unit)} ${row.unit}`,
    row.baseline === undefined ? '' : `${formatNumber(row.baseline, row.unit)} ${row.unit} (${row.baselineName ?? 'baseline'})`,
    row.ratio === undefined ? "" : `${row.ratio >= 0.1 ? row.ratio.toFixed(2) : row.ratio.toPrecision(2)}×`,
    row.cpuUs === undefined ? '' : `${row.cpuUs.toFixed(2)}${row.baselineCpuUs === undefined ? '' : ` (${row.baselineCpuUs.toFixed(2)})`}`,
    row.target === undefined ? '' : `${row.target} ${row.met === undefined || row.skipped !== undefined ? '' : row.met ? '✓' : '✗'}`.trim(),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [fmt(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...lines.map(fmt)].join('\n');
}

/** Median of a list of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
