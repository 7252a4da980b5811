/**
 * alertTrigger: what an alert rule does once an alert that matches it fires. One workflow per rule
 * (`pivot-alert-<rule>`, started with signal-with-start), so a storm of deliveries is one
 * conversation: the first firing starts it, every later delivery is a signal. It holds down (the
 * alert must keep firing; a resolve cancels), then claims the rule's cool-down in the witness (no
 * flapping: a rule starts at most one operation per cool-down), then starts the operation through
 * the same path as the API (plan first; an operation under way is attached to, not duplicated).
 */
import {
  condition,
  defineQuery,
  defineSignal,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { StartedOperation } from '../api/operations.ts';
import type { ControlActivities } from '../activities/index.ts';
import { CONTROL_TASK_QUEUE } from '../common/task-queues.ts';
import type { AlertRule } from '../config/types.ts';

export interface AlertSummary {
  fingerprint: string;
  labels: Record<string, string>;
  source: 'grafana' | 'alertmanager';
}

export interface AlertTriggerInput {
  rule: AlertRule;
  alert: AlertSummary;
}

export interface AlertTriggerReport {
  rule: string;
  outcome: 'holding' | 'cancelled' | 'suppressed' | 'started' | 'refused';
  firstFiringAt: string;
  deliveries: number;
  resolvedAt?: string;
  operations?: StartedOperation[];
  detail?: string;
}

/** patched() id: a trigger that started nothing gives its cool-down back (recorded histories kept it). */
const COOL_DOWN_GIVEN_BACK = 'cool-down-given-back';

export const alertFiringSignal = defineSignal<[AlertSummary]>('firing');
export const alertResolvedSignal = defineSignal<[AlertSummary]>('resolved');
export const alertProgressQuery = defineQuery<AlertTriggerReport>('progress');

const control = proxyActivities<ControlActivities>({
  taskQueue: CONTROL_TASK_QUEUE,
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3 },
});

export async function alertTrigger({ rule, alert }: AlertTriggerInput): Promise<AlertTriggerReport> {
  const report: AlertTriggerReport = {
    rule: rule.name,
    outcome: 'holding',
    firstFiringAt: new Date(Date.now()).toISOString(),
    deliveries: 1,
  };
  const firing = new Set([alert.fingerprint]);
  setHandler(alertFiringSignal, (a) => {
    report.deliveries += 1;
    firing.add(a.fingerprint);
  });
  setHandler(alertResolvedSignal, (a) => {
    report.deliveries += 1;
    firing.delete(a.fingerprint);
    if (firing.size === 0) report.resolvedAt = new Date(Date.now()).toISOString();
  });
  setHandler(alertProgressQuery, () => ({ ...report }));

  const resolved = await condition(() => firing.size === 0, rule.holdDownSeconds * 1000);
  if (resolved) {
    report.outcome = 'cancelled';
    report.detail = `the alert resolved within the ${rule.holdDownSeconds} s hold-down: nothing started`;
    return report;
  }
  // Claimed in this run's name, so that a start that fails or is refused gives it back: a
  // cool-down holds a rule back only after it started something.
  const giveBack = patched(COOL_DOWN_GIVEN_BACK);
  const holder = workflowInfo().runId;
  const claimed = giveBack
    ? await control.claimCoolDown(rule.name, rule.coolDownSeconds * 1000, holder)
    : await control.claimCoolDown(rule.name, rule.coolDownSeconds * 1000);
  if (!claimed) {
    report.outcome = 'suppressed';
    report.detail = `the rule started an operation less than ${rule.coolDownSeconds} s ago (cool-down)`;
    return report;
  }
  let result: Awaited<ReturnType<typeof control.startAlertOperation>>;
  try {
    result = await control.startAlertOperation(rule);
  } catch (err) {
    if (giveBack) await control.releaseCoolDown(rule.name, holder);
    throw err;
  }
  if (giveBack && result.operations.length === 0) await control.releaseCoolDown(rule.name, holder);
  report.outcome = result.operations.length > 0 ? 'started' : 'refused';
  report.operations = result.operations;
  if (result.detail) report.detail = result.detail;
  return report;
}
