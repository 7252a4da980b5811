/**
 * The drill that rehearses the real path (docs/adr/0004-drills.md): after an approval (its own
 * policy: `drills.switchoverApproval`, required by default), a real switchover to the standby and
 * a failback home, each the usual workflow, run as children under the application's operation id
 * (so the lock, attach and every safety check hold as for any operation). The evidence is the
 * same DrillReport, mode `switchover`: the switchover's RTO and measured loss against the
 * objectives, both operations' outcomes.
 */
import { condition, executeChild, setHandler } from '@temporalio/workflow';
import {
  drillId,
  newEvidence,
  recordDecision,
  reportDrill,
  validDecider,
  type DrillReport,
} from './drill.ts';
import {
  abortUpdate,
  approveUpdate,
  controlActivities,
  type DecisionRequest,
  type OperationInput,
} from './engine.ts';
import { validateApprover } from './approval.ts';
import { operationWorkflowId } from './ids.ts';
import { describeError, OperationTracker, type OperationReport } from './progress.ts';

export interface SwitchoverDrillInput {
  /** The switchover to the standby; the failback is the same with the sites swapped. */
  switchover: OperationInput;
  approvalRequired: boolean;
  twoPersonRule: boolean;
  versions: { pivot: string; runbook: string };
  retentionDays: number;
  approvalTimeoutMs?: number;
}

export async function switchoverDrill(input: SwitchoverDrillInput): Promise<DrillReport> {
  const { switchover } = input;
  const { runbook } = switchover;
  const app = runbook.metadata.name;
  const id = drillId(app);
  const tracker = new OperationTracker(
    {
      app,
      operation: 'drill',
      from: switchover.from,
      to: switchover.to,
      requestedBy: switchover.requestedBy,
      reason: switchover.reason,
      ...(switchover.trigger ? { trigger: switchover.trigger } : {}),
      mode: 'planned',
    },
    [
      ...(input.approvalRequired
        ? [
            {
              id: 'approval',
              title: 'approval of a drill that moves production',
              site: switchover.to,
            },
          ]
        : []),
      { id: 'switchover', title: `a real switchover of ${app} to ${switchover.to}`, site: switchover.to },
      { id: 'failback', title: `a real failback of ${app} to ${switchover.from}`, site: switchover.from },
    ],
  );
  const evidence = newEvidence(runbook, {
    id,
    site: switchover.to,
    namespace: runbook.spec.namespaces[0] ?? 'default',
    mode: 'switchover',
    versions: input.versions,
    cleanup: { done: true, removed: [] }, // it makes nothing to clean up
  });
  const report = reportDrill(tracker, evidence);

  let approval: DecisionRequest | undefined;
  let abort: DecisionRequest | undefined;
  setHandler(
    approveUpdate,
    (r) => {
      approval = r;
      recordDecision(tracker, 'approve', r);
      return report();
    },
    {
      validator: (r: DecisionRequest) => {
        validDecider(r);
        if (tracker.report().waiting?.for !== 'approval')
          throw new Error(`the drill of ${app} is not waiting for an approval`);
        validateApprover(r, {
          requestedBy: switchover.requestedBy,
          twoPersonRule: input.twoPersonRule,
          what: `the drill of ${app}`,
        });
      },
    },
  );
  setHandler(
    abortUpdate,
    (r) => {
      abort = r;
      recordDecision(tracker, 'abort', r);
      return report();
    },
    {
      validator: (r: DecisionRequest) => {
        validDecider(r);
        if (tracker.report().waiting?.for !== 'approval') {
          throw new Error(
            `the drill of ${app} can be aborted only while it waits for approval; abort its running operation instead`,
          );
        }
      },
    },
  );

  const run = async (type: 'switchover' | 'failback', args: OperationInput): Promise<OperationReport> =>
    tracker.step(type, async () => {
      const r = await executeChild<(i: OperationInput) => Promise<OperationReport>>(type, {
        workflowId: operationWorkflowId(app),
        args: [{ ...args, trigger: `drill:${id}` }],
      });
      if (r.outcome !== 'succeeded')
        throw new Error(`the ${type} ended ${r.outcome}${r.error ? `: ${r.error}` : ''}`);
      return r;
    });

  try {
    if (input.approvalRequired) {
      await tracker.step('approval', async () => {
        tracker.wait({
          for: 'approval',
          detail: `approve with \`pivot approve drill:${app}\`, or abort with \`pivot abort drill:${app}\``,
        });
        const got = await condition(
          () => approval !== undefined || abort !== undefined,
          input.approvalTimeoutMs ?? 3600_000,
        );
        tracker.wait(undefined);
        if (abort) throw new Error(`aborted by ${abort.by}${abort.reason ? `: ${abort.reason}` : ''}`);
        if (!got) throw new Error('nobody approved the drill in time');
      });
    }
    const over = await run('switchover', switchover);
    evidence.achieved.rtoMs = over.rtoMs;
    evidence.achieved.rpoMs = over.measuredLoss?.windowMs ?? over.rpo?.windowMs ?? 0;
    await run('failback', { ...switchover, from: switchover.to, to: switchover.from });
    if ((evidence.achieved.rtoMs ?? 0) > evidence.objectives.rtoMs) {
      evidence.reasons.push(`RTO objective missed: ${(evidence.achieved.rtoMs! / 1000).toFixed(1)} s`);
    }
    if (evidence.achieved.rpoMs > evidence.objectives.rpoMs) {
      evidence.reasons.push(`RPO objective missed: ${(evidence.achieved.rpoMs / 1000).toFixed(1)} s`);
    }
  } catch (err) {
    const step = tracker.report().steps.find((s) => s.state === 'failed');
    evidence.reasons.push(`${step ? `step ${step.id} failed: ` : ''}${describeError(err)}`);
  }
  evidence.verdict = evidence.reasons.length === 0 ? 'pass' : 'fail';
  if (abort) tracker.finish('aborted', `aborted by ${abort.by}`);
  else if (evidence.verdict === 'pass') tracker.finish('succeeded');
  else
    tracker.finish(
      'failed',
      evidence.reasons.join('; '),
      `\`pivot report ${app}\` shows the operation that failed`,
    );
  await controlActivities().recordDrill(app, id, report(), input.retentionDays);
  return report();
}
