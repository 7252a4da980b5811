/** Readable text for operation reports and live progress (the JSON is the report itself). */
import type { OperationReport, StepProgress } from '../workflows/progress.ts';
import type { DrillReport } from '../workflows/drill.ts';
import type { SiteOperationReport } from '../workflows/site.ts';

const secs = (ms: number | undefined): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

const MARK: Record<StepProgress['state'], string> = {
  pending: ' ',
  running: '>',
  succeeded: '✓',
  failed: '✗',
  skipped: '-',
};

export function formatStep(s: StepProgress): string {
  return `  ${MARK[s.state]} ${s.id.padEnd(22)} ${s.state.padEnd(9)} ${secs(s.durationMs).padStart(8)}  ${s.title}${s.error ? `\n      ${s.error}` : ''}`;
}

export function formatReport(r: OperationReport): string {
  const lines = [
    `${r.operation} of ${r.app}: ${r.from} → ${r.to} (${r.mode}) — ${r.outcome.toUpperCase()}`,
    `  requested by ${r.requestedBy}${r.trigger ? ` (${r.trigger})` : ''}: ${r.reason}`,
    `  started ${r.startedAt}${r.endedAt ? `, ended ${r.endedAt}` : ''}; RTO ${secs(r.rtoMs)}`,
  ];
  if (r.epochBefore !== undefined) {
    lines.push(`  fencing epoch ${r.epochBefore}${r.epochAfter !== undefined ? ` → ${r.epochAfter}` : ''}`);
  }
  if (r.rpo) {
    lines.push(
      `  RPO (data-loss window) ${secs(r.rpo.windowMs)}${r.rpo.lastSyncTime ? ` (last sync ${r.rpo.lastSyncTime})` : ''}: ${r.rpo.basis}`,
    );
  }
  if (r.measuredLoss) {
    lines.push(
      `  measured loss (simulated array): ${r.measuredLoss.writes} writes over ${secs(r.measuredLoss.windowMs)}`,
    );
  }
  lines.push('', ...r.steps.map(formatStep));
  if (r.waiting)
    lines.push('', `  WAITING for ${r.waiting.for} since ${r.waiting.since}: ${r.waiting.detail}`);
  if (r.error) lines.push('', `  error: ${r.error}`);
  if (r.suggestion) lines.push(`  next: ${r.suggestion}`);
  for (const d of r.decisions) {
    lines.push(
      `  ${d.action} by ${d.by} at ${d.at}${d.step ? ` (${d.step})` : ''}${d.reason ? `: ${d.reason}` : ''}`,
    );
  }
  for (const n of r.notes) lines.push(`  note: ${n}`);
  if ('drill' in r) lines.push('', ...formatDrillEvidence(r as DrillReport));
  return lines.join('\n');
}

function formatDrillEvidence(r: DrillReport): string[] {
  const d = r.drill;
  if (d.mode === 'switchover') {
    return [
      `  drill ${d.id}: a real switchover to ${d.site} and back — ${d.verdict.toUpperCase()}`,
      `  RTO ${secs(d.achieved.rtoMs)} (objective ${secs(d.objectives.rtoMs)}); data lost over ${secs(d.achieved.rpoMs)} (RPO objective ${secs(d.objectives.rpoMs)})`,
      ...d.reasons.map((reason) => `  reason: ${reason}`),
    ];
  }
  const lines = [
    `  drill ${d.id} on ${d.site} (${d.namespace}) — ${d.verdict.toUpperCase()}`,
    `  RTO would be ${secs(d.achieved.rtoMs)} (objective ${secs(d.objectives.rtoMs)}); clone data age ${secs(d.achieved.rpoMs)} (RPO objective ${secs(d.objectives.rpoMs)})`,
    `  cleanup: ${d.cleanup.done ? `done (${d.cleanup.removed.length} objects removed)` : `NOT done: ${d.cleanup.error ?? ''}`}`,
  ];
  for (const reason of d.reasons) lines.push(`  reason: ${reason}`);
  return lines;
}

export function formatSiteReport(r: SiteOperationReport): string {
  const lines = [
    `site ${r.operation} ${r.from} → ${r.to} — ${r.outcome.toUpperCase()}`,
    `  requested by ${r.requestedBy}: ${r.reason}; waves: ${r.waves.map((w, i) => `${i + 1}: ${w.join(', ')}`).join('; ')}`,
  ];
  for (const a of r.apps) {
    const took =
      a.startedAt && a.endedAt ? ` in ${secs(Date.parse(a.endedAt) - Date.parse(a.startedAt))}` : '';
    lines.push(`  wave ${a.wave}  ${a.app.padEnd(16)} ${a.outcome}${took}${a.error ? `: ${a.error}` : ''}`);
  }
  return lines.join('\n');
}
