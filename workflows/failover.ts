/**
 * failover: the unplanned move of one application to `to` when `from` is down or cannot be
 * trusted (docs/operations.md). The source cannot be asked to stop, so it is fenced without it:
 * the epoch advances in the witness with `from` fenced (the point of no return: Pivot never
 * unfences on its own), a NetworkFence on `to` cuts `from`'s clients off from the storage, the
 * source is scaled down if its API answers, and the promotion is forced. The report states the
 * data-loss window (RPO, from the replicas' last sync) and, on the lab, the loss measured by the
 * simulated array. It needs an approval by default.
 */
import { patched } from '@temporalio/workflow';
import { workloadRefs, type ClaimRef, type StepContext, type VolumeSpec } from '../activities/types.ts';
import { operationSteps } from '../planner/step-catalog.ts';
import { parseDuration } from '../runbook/duration.ts';
import { approvalRequired, controlActivities, OperationRun, siteActivities } from './engine.ts';
import type { OperationInput } from './engine.ts';
import { describeError, type OperationReport } from './progress.ts';
import {
  ACTIVE_AT_PROMOTION,
  bringUp,
  measureLoss,
  PROTECTION_AT_TARGET,
  PER_APP_FENCE,
  RPO_GATE,
  runHooks,
} from './steps.ts';

export async function failover(input: OperationInput): Promise<OperationReport> {
  const { runbook, from, to } = input;
  const run = new OperationRun(input, {
    operation: 'failover',
    mode: 'unplanned',
    attention: `${from} is fenced and must stay down: fix the cause, then retry the failed step (or skip it with a reason); reprotect ${from} before it serves again`,
    refusal: 'fix the cause and run the failover again',
    steps: operationSteps('failover', {
      runbook,
      from,
      to,
      approval: approvalRequired(runbook, 'failover'),
    }),
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
      await siteActivities(to, 'siteProbe').probeSite();
      let sourceReachable = true;
      let volumes: VolumeSpec[] = [];
      let replicas: Record<string, number> = {};
      const srcProbe = siteActivities(from, 'sourceProbe');
      try {
        await srcProbe.probeSite();
        volumes = await srcProbe.describeVolumes(runbook);
        replicas = await srcProbe.currentReplicas(workloads);
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
      // Outside the probe: the witness failing is never a verdict on the site.
      if (sourceReachable) await control.recordProtection(run.app, { site: from, volumes, replicas });
      if (!sourceReachable && (!input.fence || input.fence.cidrs.length === 0)) {
        throw new Error(
          `${from} does not answer and no client networks are configured for it: it cannot be fenced at the storage`,
        );
      }
      if (!sourceReachable && (input.fence?.cutsOff ?? []).length > 0) {
        run.approvalNotice(
          `${from} does not answer: a storage fence on its networks will also cut off ${input.fence!.cutsOff!.join(', ')}; to move them too, fail over the site (pivot failover --site ${from})`,
          input.fence!.cutsOff,
        );
      }
      if (patched(RPO_GATE)) {
        // The loss grows from the replicas' oldest last sync until writes stop; beyond the
        // objective, the approval must accept it (an unknown sync: an unbounded loss).
        const lastSync = await tgt.oldestReplicaSync(
          volumes.map((v) => ({ namespace: v.namespace, name: v.claim })),
        );
        const objectiveMs = parseDuration(runbook.spec.objectives.rpo) ?? 0;
        const lastSyncMs = lastSync ? Date.parse(lastSync) : -Infinity;
        if (Date.now() - lastSyncMs > objectiveMs) run.requireLossAcceptance({ lastSyncMs, objectiveMs });
        else run.expectLoss({ lastSyncMs, objectiveMs });
      }
      return { ctx: witness.ctx, volumes, replicas, sourceReachable };
    });
    const { volumes, sourceReachable } = pre;
    let { replicas } = pre;
    let ctx: StepContext = pre.ctx;
    const claims: ClaimRef[] = volumes.map((v) => ({ namespace: v.namespace, name: v.claim }));
    await run.approvalGate();

    run.passPointOfNoReturn();
    await run.act('fence-witness', async () => {
      const epoch = await control.fenceSite(run.app, run.operationId, ctx.epoch, from);
      ctx = { ...ctx, epoch };
    });
    // Fence the application alone while its source answers (stop it, demote its volumes: nothing
    // else on the site is touched); only a source that does not answer is fenced at the storage,
    // on its client networks, which cuts every application writing from there.
    let fencedAlone = false;
    await run.act('fence-storage', async () => {
      if (sourceReachable && patched(PER_APP_FENCE)) {
        try {
          const alone = siteActivities(from, 'sourceFence');
          replicas = { ...replicas, ...(await alone.scaleDownWorkloads(ctx, workloads)) };
          await alone.waitWorkloadsStopped(ctx, workloads);
          await alone.ensureReplicationState(ctx, claims, 'secondary');
          fencedAlone = true;
          run.tracker.note(
            `${from} answered: ${run.app} was fenced there alone (stopped, volumes demoted); ${from}'s networks are not fenced`,
          );
          return;
        } catch (err) {
          // Never cut another application off without saying so first: with others active on the
          // source, falling back to a fence on its networks is a person's decision.
          const cut = input.fence?.cutsOff ?? [];
          if (cut.length > 0) {
            throw new Error(
              `${run.app} could not be fenced alone on ${from} (${describeError(err)}), and a fence on ${from}'s networks would also cut off ${cut.join(', ')}: fail the site over (pivot failover --site ${from}), or fence ${from} by hand and attest it`,
            );
          }
          run.tracker.note(
            `${from} stopped answering while ${run.app} was fenced there alone (${describeError(err)}): fencing ${from}'s networks at the storage instead (no other application is active there)`,
          );
        }
      }
      const others = input.fence?.cutsOff ?? [];
      if (others.length > 0) {
        run.tracker.note(`the storage fence on ${from}'s networks also cuts off: ${others.join(', ')}`);
      }
      // The owner is recorded before the fence exists: a reprotect never lifts a fence someone needs.
      if (patched(PER_APP_FENCE)) await control.claimSiteFence(from, run.app);
      await tgtWait.ensureNetworkFence(ctx, from, input.fence?.cidrs ?? [], volumes[0]?.driver ?? '', {
        ...(input.fence?.className ? { className: input.fence.className } : {}),
        ...(input.fence?.secret ? { secret: input.fence.secret } : {}),
      });
    });
    // The old primary's writes provably stopped once the storage confirmed the fence (or an
    // approver attested it was fenced by hand): the data-loss window ends here, not at the witness
    // fence, which the old primary's pods never see.
    const writesStoppedAt = new Date(Date.now()).toISOString();
    await run.act('quiesce-source', async () => {
      if (fencedAlone) return; // stopped at fence-storage
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
      const objectiveMs = parseDuration(runbook.spec.objectives.rpo);
      const accepted = run.acceptedDataLossMs;
      const figures = {
        writesStoppedAt,
        ...(objectiveMs !== undefined ? { objectiveMs } : {}),
        ...(accepted !== undefined ? { acceptedLossMs: accepted } : {}),
      };
      run.tracker.rpo = lastSync
        ? {
            windowMs: Math.max(0, Date.parse(writesStoppedAt) - Date.parse(lastSync)),
            lastSyncTime: lastSync,
            ...figures,
            basis: `writes on ${from} after the replicas' oldest last sync, until the storage fence held`,
          }
        : {
            windowMs: Number.MAX_SAFE_INTEGER,
            ...figures,
            basis:
              'a replica reported no sync that bounds the loss (none yet, or one stamped in the future by an array whose clock is ahead): the loss is unbounded',
          };
      await tgtWait.ensureReplicationState(ctx, claims, 'primary', {
        force: true,
        refusalGraceMs: input.refusalGraceMs ?? 10_000,
      });
      // The witness names the promoted site at once: should the operation stop after this, no
      // site guard takes the only writable copy down.
      if (patched(ACTIVE_AT_PROMOTION)) await control.setActiveSite(run.app, run.operationId, ctx.epoch, to);
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
