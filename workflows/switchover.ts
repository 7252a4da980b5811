/**
 * switchover and failback: the planned move of one application from `from` to `to` with no data
 * loss (DESIGN.md section 2), step for step as `pivot plan switchover` prints it: quiesce the
 * source, demote it, wait for the final sync, promote the target (the point of no return), bind
 * the replicas, start the workloads in order, run the post-promote hooks, repoint traffic, verify,
 * and record the new active site with the next fencing epoch. A failback is the same move back to
 * the primary site, after a reprotect.
 *
 * Before the point of no return a failure runs the compensations newest-first (withdraw the target
 * promotion, promote the source back, scale it back up); after it, Pivot never rolls back on its
 * own: it needs attention and waits for an operator to retry or skip the failed step.
 */
import { patched } from '@temporalio/workflow';
import { workloadRefs, type ClaimRef, type VolumeSpec } from '../activities/types.ts';
import { approvalRequired, controlActivities, OperationRun, siteActivities } from './engine.ts';
import type { OperationInput } from './engine.ts';
import type { OperationReport } from './progress.ts';
import { bringUp, bringUpSteps, hookSteps, measureLoss, PROTECTION_AT_TARGET, runHooks } from './steps.ts';

export type SwitchoverInput = OperationInput;

export function switchover(input: OperationInput): Promise<OperationReport> {
  return plannedMove(input, 'switchover');
}

export function failback(input: OperationInput): Promise<OperationReport> {
  return plannedMove(input, 'failback');
}

async function plannedMove(
  input: OperationInput,
  operation: 'switchover' | 'failback',
): Promise<OperationReport> {
  const { runbook, from, to } = input;
  const run = new OperationRun(input, {
    operation,
    mode: 'planned',
    pointOfNoReturnStep: 'promote-target',
    attention: `the volumes are primary on ${to}: fix the cause, then retry the failed step; never promote ${from} back without a reprotect`,
    refusal: `fix the cause and run the ${operation} again`,
    steps: [
      ['preflight', 'preflight checks', 'control'],
      ...(approvalRequired(runbook, operation)
        ? [['approval', `wait for approval of the ${operation}`, 'control'] as [string, string, string]]
        : []),
      ...hookSteps(runbook, 'pre-fence', from),
      ['quiesce-source', `scale the workloads on ${from} to 0 and wait until their pods are gone`, from],
      ['demote-source', `demote the volumes on ${from}`, from],
      ['final-sync', `wait until ${to} has every write made before the quiesce`, to],
      ['promote-target', `promote the volumes on ${to}`, to],
      ...bringUpSteps(runbook, to),
      ['record-active-site', `record ${to} as the active site and advance the fencing epoch`, 'control'],
    ],
  });
  const control = controlActivities();
  const [src, srcWait, tgt, tgtWait] = [
    siteActivities(from, 'k8sMutation'),
    siteActivities(from, 'storageWait'),
    siteActivities(to, 'k8sMutation'),
    siteActivities(to, 'storageWait'),
  ];
  const probe = (site: string) => siteActivities(site, 'bestEffort').probeSite();
  const workloads = workloadRefs(runbook);

  return run.execute(async () => {
    const { ctx, volumes } = await run.step('preflight', async () => {
      const witness = await run.begin({ active: from, unfenced: to });
      await Promise.all([probe(from), probe(to)]);
      const volumes: VolumeSpec[] = await src.describeVolumes(runbook);
      await control.recordProtection(run.app, {
        site: from,
        volumes,
        replicas: await src.currentReplicas(workloads),
      });
      return { ctx: witness.ctx, volumes };
    });
    const claims: ClaimRef[] = volumes.map((v) => ({ namespace: v.namespace, name: v.claim }));
    await run.approvalGate();
    await runHooks(run, ctx, 'pre-fence', from);

    const replicas = await run.step('quiesce-source', async () => {
      const recorded = await src.scaleDownWorkloads(ctx, workloads);
      run.compensate(`scale the workloads on ${from} back up`, () =>
        srcWait.scaleUpWorkloads(ctx, workloads, recorded),
      );
      await srcWait.waitWorkloadsStopped(ctx, workloads);
      return recorded;
    });
    // Workflow time at this point is after the pods were confirmed gone: no write is later.
    const quiescedAt = new Date(Date.now()).toISOString();

    await run.step('demote-source', async () => {
      run.compensate(`promote the volumes on ${from} back`, () =>
        srcWait.ensureReplicationState(ctx, claims, 'primary'),
      );
      await srcWait.ensureReplicationState(ctx, claims, 'secondary');
    });
    const synced = await run.step('final-sync', () => tgtWait.waitForSyncSince(ctx, claims, quiescedAt));
    run.tracker.rpo = {
      windowMs: 0,
      lastSyncTime: synced,
      basis: `planned: every replica received a sync taken after the source was quiesced (${quiescedAt})`,
    };

    await run.step('promote-target', async () => {
      // A refused promotion stays requested at the storage: withdraw it before the source is promoted back.
      run.compensate(`withdraw the promotion of the volumes on ${to}`, () =>
        tgtWait.ensureReplicationState(ctx, claims, 'secondary'),
      );
      await tgtWait.ensureReplicationState(ctx, claims, 'primary', {
        refusalGraceMs: input.refusalGraceMs ?? 10_000,
      });
    });
    run.passPointOfNoReturn();
    await measureLoss(run, volumes);

    await bringUp(run, ctx, volumes, replicas, { site: from, reachable: true });
    await run.act('record-active-site', async () => {
      const epoch = await control.recordActiveSite(
        run.app,
        run.operationId,
        ctx.epoch,
        to,
        `${operation} ${from} → ${to}: ${input.reason}`,
      );
      run.tracker.epochAfter = epoch;
      await Promise.all([
        tgt.recordSiteState(run.app, runbook.spec.namespaces, to, epoch),
        src.recordSiteState(run.app, runbook.spec.namespaces, to, epoch),
      ]);
      // The protection record follows the application at once: a failover right after must not
      // wait for the new site's guard to have refreshed it.
      if (patched(PROTECTION_AT_TARGET)) {
        await control.recordProtection(run.app, { site: to, volumes, replicas });
      }
    });
  });
}
