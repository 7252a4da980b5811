/**
 * reprotect: after an unplanned failover, the old primary is back. Keep its workloads down and its
 * traffic off, resync its volumes from the active site (dropping what it wrote after the last sync,
 * which the failover reported), then lift its storage fence and its witness fence. The active site
 * keeps serving throughout; a failback then moves the application home with no data loss.
 *
 * Here `from` is the active site and `to` the old primary being reprotected.
 */
import { patched } from '@temporalio/workflow';
import { workloadRefs, type ClaimRef, type StepContext, type VolumeSpec } from '../activities/types.ts';
import { operationSteps } from '../planner/step-catalog.ts';
import { approvalRequired, controlActivities, OperationRun, siteActivities } from './engine.ts';
import type { OperationInput } from './engine.ts';
import type { OperationReport } from './progress.ts';
import { measureLoss, PER_APP_FENCE } from './steps.ts';

export async function reprotect(input: OperationInput): Promise<OperationReport> {
  const { runbook, from, to } = input;
  const run = new OperationRun(input, {
    operation: 'reprotect',
    mode: 'planned',
    attention: `${to} is being resynced from ${from}: fix the cause, then retry the failed step; ${from} keeps serving`,
    refusal: 'fix the cause and run the reprotect again',
    steps: operationSteps('reprotect', {
      runbook,
      from,
      to,
      approval: approvalRequired(runbook, 'reprotect'),
    }),
  });
  const control = controlActivities();
  const [active, old, oldWait] = [
    siteActivities(from, 'k8sMutation'),
    siteActivities(to, 'k8sMutation'),
    siteActivities(to, 'storageWait'),
  ];
  const activeWait = siteActivities(from, 'storageWait');
  const workloads = workloadRefs(runbook);

  /**
   * The storage fence on `to`'s networks cuts every application writing from there: it is lifted
   * only when no application relies on it any more, and no copy on `to` is primary while its peer
   * on `from` is too (lifting it then would make two writers).
   */
  const liftSiteFence = async (ctx: StepContext): Promise<void> => {
    const owners = await control.releaseSiteFence(to, run.app);
    if (owners.length > 0) {
      run.tracker.note(`the storage fence on ${to}'s networks stays: ${owners.join(', ')} still rely on it`);
      return;
    }
    const [here, there] = await Promise.all([old.primaryReplications(), active.primaryReplications()]);
    const both = here.filter((vr) => there.includes(vr));
    if (both.length > 0) {
      run.tracker.note(
        `the storage fence on ${to}'s networks stays: ${both.join(', ')} are primary on both sites; reprotect their applications first`,
      );
      return;
    }
    await activeWait.removeNetworkFence(ctx, to);
  };

  return run.execute(async () => {
    const { ctx, volumes } = await run.step('preflight', async () => {
      const witness = await run.begin({ active: from });
      await Promise.all([
        siteActivities(from, 'siteProbe').probeSite(),
        siteActivities(to, 'siteProbe').probeSite(),
      ]);
      const volumes: VolumeSpec[] = await active.describeVolumes(runbook);
      return { ctx: witness.ctx, volumes };
    });
    const claims: ClaimRef[] = volumes.map((v) => ({ namespace: v.namespace, name: v.claim }));
    await run.approvalGate();
    run.passPointOfNoReturn();

    await run.act('keep-old-primary-down', async () => {
      await old.scaleDownWorkloads(ctx, workloads);
      await oldWait.waitWorkloadsStopped(ctx, workloads);
      if (runbook.spec.traffic.length > 0) {
        await old.pointTraffic(ctx, runbook.spec.traffic, run.namespace, false, from);
      }
    });
    await run.act('demote-old-primary', () => oldWait.ensureReplicationState(ctx, claims, 'resync'));
    await run.act('wait-resync', async () => {
      await oldWait.ensureReplicationState(ctx, claims, 'secondary');
      await oldWait.waitForSyncSince(ctx, claims, new Date(Date.now()).toISOString());
    });
    // On the lab: after the resync the old primary holds nothing the active site lacks.
    await measureLoss(run, volumes, to);
    await run.act('unfence', async () => {
      if (patched(PER_APP_FENCE)) await liftSiteFence(ctx);
      else await activeWait.removeNetworkFence(ctx, to);
      const epoch = await control.unfenceSite(run.app, run.operationId, ctx.epoch, to);
      run.tracker.epochAfter = epoch;
      await Promise.all([
        active.recordSiteState(run.app, runbook.spec.namespaces, from, epoch),
        old.recordSiteState(run.app, runbook.spec.namespaces, from, epoch),
      ]);
    });
  });
}
