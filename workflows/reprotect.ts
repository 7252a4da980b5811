/**
 * reprotect: after an unplanned failover, the old primary is back. Keep its workloads down and its
 * traffic off, resync its volumes from the active site (dropping what it wrote after the last sync,
 * which the failover reported), then lift its storage fence and its witness fence. The active site
 * keeps serving throughout; a failback then moves the application home with no data loss.
 *
 * Here `from` is the active site and `to` the old primary being reprotected.
 */
import { workloadRefs, type ClaimRef, type VolumeSpec } from '../activities/types.ts';
import { approvalRequired, controlActivities, OperationRun, siteActivities } from './engine.ts';
import type { OperationInput } from './engine.ts';
import type { OperationReport } from './progress.ts';
import { measureLoss } from './steps.ts';

export async function reprotect(input: OperationInput): Promise<OperationReport> {
  const { runbook, from, to } = input;
  const run = new OperationRun(input, {
    operation: 'reprotect',
    mode: 'planned',
    pointOfNoReturnStep: 'keep-old-primary-down',
    attention: `${to} is being resynced from ${from}: fix the cause, then retry the failed step; ${from} keeps serving`,
    refusal: 'fix the cause and run the reprotect again',
    steps: [
      ['preflight', 'preflight checks', 'control'],
      ...(approvalRequired(runbook, 'reprotect')
        ? [['approval', 'wait for approval of the reprotect', 'control'] as [string, string, string]]
        : []),
      [
        'keep-old-primary-down',
        `make sure the workloads on ${to} (the old primary) stay at 0 and get no traffic`,
        to,
      ],
      ['demote-old-primary', `demote the old primary's volumes on ${to} and resync them from ${from}`, to],
      ['wait-resync', 'wait until the replicas are resynced and replicating', to],
      ['unfence', `lift the storage fence and the witness fence of ${to}`, from],
    ],
  });
  const control = controlActivities();
  const [active, old, oldWait] = [
    siteActivities(from, 'k8sMutation'),
    siteActivities(to, 'k8sMutation'),
    siteActivities(to, 'storageWait'),
  ];
  const activeWait = siteActivities(from, 'storageWait');
  const workloads = workloadRefs(runbook);

  return run.execute(async () => {
    const { ctx, volumes } = await run.step('preflight', async () => {
      const witness = await run.begin({ active: from });
      await Promise.all([
        siteActivities(from, 'bestEffort').probeSite(),
        siteActivities(to, 'bestEffort').probeSite(),
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
      await activeWait.removeNetworkFence(ctx, to);
      const epoch = await control.unfenceSite(run.app, run.operationId, ctx.epoch, to);
      run.tracker.epochAfter = epoch;
      await Promise.all([
        active.recordSiteState(run.app, runbook.spec.namespaces, from, epoch),
        old.recordSiteState(run.app, runbook.spec.namespaces, from, epoch),
      ]);
    });
  });
}
