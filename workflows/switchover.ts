/**
 * switchover and failback: the planned move of one application from `from` to `to` with no data
 * loss (docs/operations.md), step for step as `pivot plan switchover` prints it: quiesce the
 * source, demote it, wait for the final sync, promote the target (the point of no return), bind
 * the replicas, start the workloads in order, run the post-promote hooks, repoint traffic, verify,
 * and record the new active site with the next fencing epoch. A failback is the same move back to
 * the primary site, after a reprotect.
 *
 * Before the point of no return a failure runs the compensations newest-first (withdraw the target
 * promotion, promote the source back, scale it back up); after it, Pivot never rolls back on its
 * own: it needs attention and waits for an operator to retry or skip the failed step.
 */
import { CancellationScope, patched, sleep } from '@temporalio/workflow';
import { workloadRefs, type ClaimRef, type VolumeSpec } from '../activities/types.ts';
import { operationSteps } from '../planner/step-catalog.ts';
import { approvalRequired, controlActivities, OperationRun, siteActivities } from './engine.ts';
import type { OperationInput } from './engine.ts';
import { describeError, type OperationReport } from './progress.ts';
import { ACTIVE_AT_PROMOTION, bringUp, measureLoss, PROTECTION_AT_TARGET, runHooks } from './steps.ts';

export type SwitchoverInput = OperationInput;

/** patched() id: a compensation on the source probes it first (recorded histories did not). */
const SOURCE_ASKED_BEFORE_UNDO = 'source-asked-before-undo';
/** patched() id: the final sync watches the source while it waits (recorded histories did not). */
const SOURCE_WATCHED_IN_FINAL_SYNC = 'source-watched-in-final-sync';
/** How often the final sync asks the source whether it still answers. */
const SOURCE_WATCH_EVERY_MS = 10_000;

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
    attention: `the volumes are primary on ${to}: fix the cause, then retry the failed step; never promote ${from} back without a reprotect`,
    refusal: `fix the cause and run the ${operation} again`,
    steps: operationSteps(operation, { runbook, from, to, approval: approvalRequired(runbook, operation) }),
  });
  const control = controlActivities();
  const [src, srcWait, tgt, tgtWait] = [
    siteActivities(from, 'k8sMutation'),
    siteActivities(from, 'storageWait'),
    siteActivities(to, 'k8sMutation'),
    siteActivities(to, 'storageWait'),
  ];
  const probe = (site: string) => siteActivities(site, 'siteProbe').probeSite();
  // A roll-back asks the source first: one that is gone fails its undo in seconds, naming it,
  // rather than wait on a task queue no worker serves.
  const sourceAnswers = async () => {
    if (patched(SOURCE_ASKED_BEFORE_UNDO)) await probe(from);
  };
  const workloads = workloadRefs(runbook);
  const recordReason = `${operation} ${from} → ${to}: ${input.reason}`;

  return run.execute(async () => {
    const pre = await run.step('preflight', async () => {
      const witness = await run.begin({ active: from, unfenced: to });
      await Promise.all([probe(from), probe(to)]);
      const volumes: VolumeSpec[] = await src.describeVolumes(runbook);
      const replicas = await src.currentReplicas(workloads);
      await control.recordProtection(run.app, { site: from, volumes, replicas });
      return { ctx: witness.ctx, volumes, replicas };
    });
    const { volumes } = pre;
    const epochBefore = pre.ctx.epoch;
    let ctx = pre.ctx;
    const claims: ClaimRef[] = volumes.map((v) => ({ namespace: v.namespace, name: v.claim }));
    await run.approvalGate();
    await runHooks(run, ctx, 'pre-fence', from);

    const replicas = await run.step('quiesce-source', async () => {
      // Registered before the scale-down, so that one that fails half-way is undone too: with the
      // counts read at preflight until the scale-down returns the counts it recorded.
      let restore = pre.replicas;
      run.compensate(`scale the workloads on ${from} back up`, async () => {
        await sourceAnswers();
        await srcWait.scaleUpWorkloads(ctx, workloads, restore);
      });
      restore = await src.scaleDownWorkloads(ctx, workloads);
      await srcWait.waitWorkloadsStopped(ctx, workloads);
      return restore;
    });
    // Workflow time at this point is after the pods were confirmed gone: no write is later.
    const quiescedAt = new Date(Date.now()).toISOString();

    await run.step('demote-source', async () => {
      run.compensate(`promote the volumes on ${from} back`, async () => {
        await sourceAnswers();
        await srcWait.ensureReplicationState(ctx, claims, 'primary');
      });
      await srcWait.ensureReplicationState(ctx, claims, 'secondary');
    });
    const synced = await run.step('final-sync', () => {
      if (!patched(SOURCE_WATCHED_IN_FINAL_SYNC)) return tgtWait.waitForSyncSince(ctx, claims, quiescedAt);
      // The last sync comes from the source: while the target waits for it, the source is asked
      // every 10 s, and one that stops answering ends the wait, before the point of no return,
      // rather than leave the move waiting for a sync that cannot come. It never turns the move
      // into a failover: that is a person's decision.
      return CancellationScope.cancellable(async () => {
        const watch = (async (): Promise<never> => {
          for (;;) {
            await sleep(SOURCE_WATCH_EVERY_MS);
            try {
              await siteActivities(from, 'sourceProbe').probeSite();
            } catch (err) {
              throw new Error(
                `${from} stopped answering during the final sync (${describeError(err)}): the ${operation} stopped before its point of no return; if ${from} is lost, fail it over (an unplanned failover, with its approval)`,
              );
            }
          }
        })();
        try {
          return await Promise.race([tgtWait.waitForSyncSince(ctx, claims, quiescedAt), watch]);
        } finally {
          CancellationScope.current().cancel();
        }
      });
    });
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
      // The witness names the promoted site, at the next epoch, as the last act of the promotion:
      // should the operation stop after this, no site guard takes the only writable copy down.
      if (patched(ACTIVE_AT_PROMOTION)) {
        const epoch = await control.recordActiveSite(run.app, run.operationId, epochBefore, to, recordReason);
        ctx = { ...ctx, epoch };
      }
    });
    run.passPointOfNoReturn();
    await measureLoss(run, volumes);

    await bringUp(run, ctx, volumes, replicas, { site: from, reachable: true });
    await run.act('record-active-site', async () => {
      // Idempotent: finds the advance made at the promotion (histories from before: makes it).
      const epoch = await control.recordActiveSite(run.app, run.operationId, epochBefore, to, recordReason);
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
