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

/**
 * A plan in a few lines, for a person about to confirm it: per application where it goes, whether
 * it waits for approval and the data it may lose; what is refused; where the point of no return is.
 */
export function formatPlanSummary(plan: Plan): string {
  const apps = plan.waves.flatMap((w) => w.apps.map((a) => ({ wave: w.wave, ...a })));
  const out = [
    `${plan.operation}: ${apps.length} application${apps.length === 1 ? '' : 's'} in ${plan.waves.length} wave${plan.waves.length === 1 ? '' : 's'}${plan.refused.length ? `, ${plan.refused.length} refused` : ''}`,
  ];
  for (const a of apps) {
    out.push(
      `  wave ${a.wave}  ${a.app}: ${a.from} → ${a.to}; approval ${a.approval}; data loss ${lossText(a)}`,
    );
  }
  const noReturn = apps[0]?.steps.find((s) => s.pointOfNoReturn);
  if (noReturn) out.push(`  point of no return: ${noReturn.title} (no automatic rollback after it)`);
  for (const r of plan.refused) out.push(`  REFUSED ${r.app}: ${r.reasons.join('; ')}`);
  for (const w of plan.warnings) out.push(`  warning: ${w.app}: ${w.site}: ${w.object}: ${w.message}`);
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
