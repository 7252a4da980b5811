/**
 * What the benchmark measures besides wall time: the processes' CPU and memory from /proc, the
 * Kubernetes API requests the lab's API proxy forwarded, and percentiles.
 */
import { readFileSync } from 'node:fs';
import type { ApiProxyClient } from '../lab/api-proxy/client.ts';

/** Clock ticks per second of /proc/<pid>/stat's times (USER_HZ: 100 on every Linux Node runs on). */
const USER_HZ = 100;

export interface ProcessFigures {
  name: string;
  cpuSeconds: number;
  peakRssMiB: number;
}

function cpuTicks(pid: number): number {
  // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Samples the processes' RSS every second; `stop` gives their CPU time over the window and peak RSS. */
export function sampleProcesses(processes: Array<{ name: string; pid: number }>): {
  stop: () => ProcessFigures[];
} {
  const start = new Map(processes.map((p) => [p.pid, safe(() => cpuTicks(p.pid))]));
  const peak = new Map(processes.map((p) => [p.pid, 0]));
  const sample = () => {
    for (const p of processes)
      peak.set(
        p.pid,
        Math.max(
          peak.get(p.pid)!,
          safe(() => rssKiB(p.pid)),
        ),
      );
  };
  sample();
  const timer = setInterval(sample, 1000);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      return processes.map((p) => ({
        name: p.name,
        cpuSeconds: (safe(() => cpuTicks(p.pid)) - start.get(p.pid)!) / USER_HZ,
        peakRssMiB: Math.round(peak.get(p.pid)! / 1024),
      }));
    },
  };
}

/** A process that died reads as 0: the figures then show it rather than the run failing. */
function safe(read: () => number): number {
  try {
    return read();
  } catch {
    return 0;
  }
}

/** The requests the API proxy forwarded so far, by `<site> <user agent>`. */
export async function forwardedRequests(proxy: ApiProxyClient): Promise<Record<string, number>> {
  const report = await proxy.report();
  return Object.fromEntries(
    Object.entries(report).flatMap(([site, r]) =>
      Object.entries(r.counters.forwardedBy).map(([agent, n]) => [`${site} ${agent}`, n]),
    ),
  );
}

export function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

/** Pivot's requests (its processes name themselves pivot-*), summed by site or by component. */
export function pivotRequests(
  counts: Record<string, number>,
  by: 'site' | 'component',
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of Object.entries(counts)) {
    const [site, agent] = key.split(' ') as [string, string];
    if (!agent.startsWith('pivot-') || n === 0) continue;
    const k = by === 'site' ? site : agent.slice('pivot-'.length);
    out[k] = (out[k] ?? 0) + n;
  }
  return out;
}

/** The q-quantile (0..1) of the values, nearest rank; undefined for none. */
export function quantile(values: number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
