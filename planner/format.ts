/** Human-readable renderings of plans and drift reports, for the CLI (scripts use --json). */
import { formatDuration } from '../runbook/duration.ts';
import type { DriftIssue } from './drift.ts';
import type { AppPlan, Plan } from './plan.ts';

function lossText(app: AppPlan): string {
  const l = app.estimatedDataLoss;
  if (l.windowMs === 0) return `none (${l.basis})`;
  const window = Number.isFinite(l.windowMs) ? `up to ${formatDuration(l.windowMs)} of writes` : 'unbounded';
  return `${window} (${l.basis}); RPO objective ${formatDuration(l.rpoObjectiveMs)}${l.withinObjective ? '' : ' EXCEEDED'}`;
}

export function formatPlan(plan: Plan): string {
  const out: string[] = [];
  for (const wave of plan.waves) {
    out.push(`wave ${wave.wave}`);
    for (const app of wave.apps) {
      out.push(`  ${app.operation} ${app.app}: ${app.from} → ${app.to}   approval: ${app.approval}`);
      out.push(`    estimated data loss: ${lossText(app)}`);
      app.steps.forEach((s, i) => {
        const marks = [
          s.pointOfNoReturn ? 'POINT OF NO RETURN' : '',
          s.compensation ? `undo: ${s.compensation}` : '',
        ].filter(Boolean);
        out.push(
          `    ${String(i + 1).padStart(2)}. [${s.site}] ${s.title}${marks.length ? `   (${marks.join('; ')})` : ''}`,
        );
        for (const p of s.preconditions) out.push(`          checks: ${p}`);
        for (const o of s.objects) {
          out.push(
            `          ${o.action.padEnd(6)} ${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}: ${o.change}`,
          );
        }
      });
    }
  }
  for (const r of plan.refused) {
    out.push(`REFUSED ${plan.operation} ${r.app}:`);
    for (const reason of r.reasons) out.push(`  - ${reason}`);
  }
  for (const w of plan.warnings) out.push(`warning: ${w.app}: ${w.site}: ${w.object}: ${w.message}`);
  if (out.length === 0) out.push('nothing to plan: no application selected');
  return out.join('\n');
}

export function formatDrift(issues: DriftIssue[], apps: string[]): string {
  if (issues.length === 0) return `no drift: ${apps.join(', ')} match both sites`;
  return issues
    .map(
      (i) =>
        `${i.severity.toUpperCase().padEnd(7)} ${i.app} ${i.site}: ${i.object}: ${i.message}\n        hint: ${i.hint}  [${i.rule}]`,
    )
    .join('\n');
}
