/**
 * failover: the unplanned move of one application to `to` when `from` is down or cannot be
 * trusted (DESIGN.md section 2). The source cannot be asked to stop, so it is fenced without it:
 * the epoch advances in the witness with `from` fenced (the point of no return: Pivot never
 * unfences on its own), a NetworkFence on `to` cuts `from`'s clients off from the storage, the
 * source is scaled down if its API answers, and the promotion is forced. The report states the
 * data-loss window (RPO, from the replicas' last sync) and, on the lab, the loss measured by the
 * simulated array. It needs an approval by default.
 */
import { patched } from '@temporalio/workflow';
import { workloadRefs, type ClaimRef, type StepContext, type VolumeSpec } from '../activities/types.ts';
import { approvalRequired, controlActivities, OperationRun, siteActivities } from './engine.ts';
import type { OperationInput } from './engine.ts';
import type { OperationReport } from './progress.ts';
import { bringUp, bringUpSteps, hookSteps, measureLoss, PROTECTION_AT_TARGET, runHooks } from './steps.ts';

export async function failover(input: OperationInput): Promise<OperationReport> {
  const { runbook, from, to } = input;
  const run = new OperationRun(input, {
    operation: 'failover',
    mode: 'unplanned',
    pointOfNoReturnStep: 'fence-witness',
    attention: `${from} is fenced and must stay down: fix the cause, then retry the failed step (or skip it with a reason); reprotect ${from} before it serves again`,
    refusal: 'fix the cause and run the failover again',
    steps: [
      ['preflight', 'preflight checks', 'control'],
      ...(approvalRequired(runbook, 'failover')
        ? [['approval', 'wait for approval of the failover', 'control'] as [string, string, string]]
        : []),
      ['fence-witness', `advance the fencing epoch and mark ${from} fenced in the witness`, 'control'],
      ['fence-storage', `fence ${from}'s clients at the storage`, to],
      ['quiesce-source', `best effort: scale the workloads on ${from} to 0`, from],
      ['promote-target', `force-promote the volumes on ${to}`, to],
      ...bringUpSteps(runbook, to),
      ...hookSteps(runbook, 'post-failover', to),
      ['record-active-site', `record ${to} as the active site, in the witness and on the sites`, 'control'],
    ],
  });
  const control = controlActivities();
  const [tgt, tgtWait, srcMaybe] = [
    siteActivities(to, 'k8sMutation'),
    siteActivities(to, 'storageWait'),
    siteActivities(from, 'bestEffort'),
  ];
  const workloads = workloadRefs(runbook);

  return run.execute(async () => {
    const pre = await run.step('preflight', async () => {
      const witness = await run.begin({ active: from, unfenced: to });
      if (!input.fence || input.fence.cidrs.length === 0) {
        throw new Error(`no client networks are configured for ${from}: it cannot be fenced at the storage`);
      }
      await siteActivities(to, 'bestEffort').probeSite();
      let sourceReachable = true;
      let volumes: VolumeSpec[] = [];
      let replicas: Record<string, number> = {};
      try {
        await srcMaybe.probeSite();
        volumes = await srcMaybe.describeVolumes(runbook);
        replicas = await srcMaybe.currentReplicas(workloads);
        await control.recordProtection(run.app, { site: from, volumes, replicas });
      } catch {
        sourceReachable = false;
        const record = await control.protection(run.app);
        if (!record || record.site !== from) {
          throw new Error(
            `${from} does not answer and Pivot holds no record of ${run.app}'s volumes on it: bind the replicas by hand`,
          );
        }
        ({ volumes, replicas } = record);
        run.tracker.note(
          `${from} does not answer: using the volumes and replica counts recorded at ${record.at}`,
        );
      }
      return { ctx: witness.ctx, volumes, replicas, sourceReachable };
    });
    const { volumes, sourceReachable } = pre;
    let { replicas } = pre;
    let ctx: StepContext = pre.ctx;
    const claims: ClaimRef[] = volumes.map((v) => ({ namespace: v.namespace, name: v.claim }));
    await run.approvalGate();

    run.passPointOfNoReturn();
    let fencedAt = '';
    await run.act('fence-witness', async () => {
      const epoch = await control.fenceSite(run.app, run.operationId, ctx.epoch, from);
      ctx = { ...ctx, epoch };
      fencedAt = new Date(Date.now()).toISOString();
    });
    await run.act('fence-storage', () =>
      tgtWait.ensureNetworkFence(ctx, from, input.fence?.cidrs ?? [], volumes[0]?.driver ?? '', {
        ...(input.fence?.className ? { className: input.fence.className } : {}),
        ...(input.fence?.secret ? { secret: input.fence.secret } : {}),
      }),
    );
    await run.act('quiesce-source', async () => {
      if (!sourceReachable) {
        run.tracker.note(
          `${from} did not answer at preflight: not asked to scale down; it is fenced at the storage and its site worker keeps it down when it returns`,
        );
        return;
      }
      try {
        replicas = { ...replicas, ...(await srcMaybe.scaleDownWorkloads(ctx, workloads)) };
      } catch (err) {
        run.tracker.note(
          `${from} could not be scaled down (${String(err)}): it is fenced at the storage and its site worker keeps it down when it returns`,
        );
      }
    });
    await run.act('promote-target', async () => {
      const lastSync = await tgt.oldestReplicaSync(claims);
      run.tracker.rpo = lastSync
        ? {
            windowMs: Math.max(0, Date.parse(fencedAt) - Date.parse(lastSync)),
            lastSyncTime: lastSync,
            basis: `writes on ${from} after the replicas' oldest last sync, up to the fence`,
          }
        : {
            windowMs: Number.MAX_SAFE_INTEGER,
            basis: 'a replica never reported a sync: the loss is unbounded',
          };
      await tgtWait.ensureReplicationState(ctx, claims, 'primary', {
        force: true,
        refusalGraceMs: input.refusalGraceMs ?? 10_000,
      });
    });
    await measureLoss(run, volumes);
    await bringUp(run, ctx, volumes, replicas, { site: from, reachable: sourceReachable });
    await runHooks(run, ctx, 'post-failover', to);
    await run.act('record-active-site', async () => {
      await control.setActiveSite(run.app, run.operationId, ctx.epoch, to);
      run.tracker.epochAfter = ctx.epoch;
      await tgt.recordSiteState(run.app, runbook.spec.namespaces, to, ctx.epoch);
      if (patched(PROTECTION_AT_TARGET)) {
        await control.recordProtection(run.app, { site: to, volumes, replicas });
      }
      try {
        if (!sourceReachable) throw new Error('unreachable at preflight');
        await srcMaybe.recordSiteState(run.app, runbook.spec.namespaces, to, ctx.epoch);
      } catch {
        run.tracker.note(`${from} did not answer: its site worker records the new state when it returns`);
      }
    });
  });
}
