/**
 * The site guard, run by every site worker next to its site: it is how a returning old primary is
 * recognised as fenced and kept down until reprotect (docs/safety.md, invariant 5), and how
 * Pivot keeps what an unplanned failover needs when the source is gone.
 *
 * Every period, for each runbook that names this site, unless an operation holds the
 * application's lock:
 * - if the witness says another site is active, or this site is fenced, it scales the
 *   application's workloads here to 0 (recording their counts) and writes the witness's view into
 *   the site's pivot-active-site ConfigMap;
 * - if this site is the active one (or, before any operation, the one whose volumes are primary),
 *   it records the application's volumes and replica counts in the witness (the protection record).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../common/logging.ts';
import type { SiteApi } from '../common/k8s.ts';
import { loadRunbookDir } from '../planner/inputs.ts';
import { observeClaimedVolumes, type SiteSnapshot } from '../planner/live-state.ts';
import { resolveVolumes } from '../planner/resolve.ts';
import type { Runbook } from '../runbook/types.ts';
import type { Witness } from '../witness/witness.ts';
import { volumeSpecs } from '../activities/claims.ts';
import { createSiteStateActivities } from '../activities/site-state.ts';
import { createWorkloadActivities } from '../activities/workloads.ts';
import { workloadKey, workloadRefs, type WorkloadRef } from '../activities/types.ts';

export interface GuardAction {
  app: string;
  action: 'kept-down' | 'recorded' | 'none';
  detail?: string;
}

export class SiteGuard {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private readonly workloads: ReturnType<typeof createWorkloadActivities>;
  private readonly siteState: ReturnType<typeof createSiteStateActivities>;
  /** What recordSiteState last wrote, by application. */
  private readonly written = new Map<string, { view: string; at: number }>();

  constructor(
    private readonly api: SiteApi,
    private readonly witness: Witness,
    private readonly runbooks: () => Runbook[],
    private readonly log: Logger,
  ) {
    this.workloads = createWorkloadActivities(api, witness);
    this.siteState = createSiteStateActivities(api);
  }

  start(periodMs: number): void {
    const tick = () => {
      this.running = this.pass()
        .catch((err: unknown) => this.log.warn({ err: String(err) }, 'site guard pass failed'))
        .finally(() => {
          this.timer = setTimeout(tick, periodMs);
        });
    };
    tick();
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /**
   * One pass over every runbook of this site; returns what it did (for logs and tests). The site is
   * read once for all of them (observeClaimedVolumes: a few lists across the site, and the claims'
   * PVs), so that a pass over hundreds of applications costs the site what a pass over a few does;
   * what the pass changes, it reads again first.
   */
  async pass(): Promise<GuardAction[]> {
    const site = this.api.site;
    const mine = this.runbooks().filter(
      (r) => r.spec.sites.primary === site || r.spec.sites.secondary === site,
    );
    if (mine.length === 0) return [];
    const read = await observeClaimedVolumes(this.api, [...new Set(mine.flatMap((r) => r.spec.namespaces))]);
    const out: GuardAction[] = [];
    for (const runbook of mine) out.push(await this.guard(runbook, read));
    return out;
  }

  private async guard(
    runbook: Runbook,
    { snapshot, pvs }: Awaited<ReturnType<typeof observeClaimedVolumes>>,
  ): Promise<GuardAction> {
    const site = this.api.site;
    const app = runbook.metadata.name;
    if (await this.witness.lockHolder(app)) return { app, action: 'none', detail: 'an operation runs' };
    const state = await this.witness.state(app);
    const workloads = workloadRefs(runbook);
    const fenced = state.fencedSites.includes(site);
    if (!snapshot.reachable) return { app, action: 'none', detail: 'site not observable' };
    if (fenced || (state.activeSite !== undefined && state.activeSite !== site)) {
      await this.recordSiteState(app, runbook.spec.namespaces, state.activeSite ?? '', state.epoch);
      if (runningIn(snapshot, workloads).length === 0) return { app, action: 'none' };
      // Seen running in this pass's read: read again before acting on it.
      const running = await this.runningWorkloads(workloads);
      if (running.length === 0) return { app, action: 'none' };
      // Never down on both sites by Pivot's hand: an unfenced site whose volumes are primary may be
      // the only writable copy (an operation stopped between its promotion and its record).
      if (!fenced && (await this.primaryHere(runbook))) {
        this.log.error(
          { app, site, activeSite: state.activeSite, epoch: state.epoch, workloads: running },
          'not keeping down a site whose volumes are primary and that is not fenced: look at both sites',
        );
        return { app, action: 'none', detail: 'volumes primary here and not fenced: left running' };
      }
      const ctx = { app, operationId: `site-guard-${site}`, epoch: state.epoch };
      const counts = await this.workloads.scaleDownWorkloads(ctx, workloads);
      this.log.warn(
        { app, site, activeSite: state.activeSite, fenced, epoch: state.epoch, workloads: running, counts },
        'kept a workload down on a site that is not active',
      );
      return { app, action: 'kept-down', detail: running.join(', ') };
    }
    // Active here, or (before any operation) primary here: keep the protection record fresh.
    if (!this.isPrimary(runbook, snapshot))
      return { app, action: 'none', detail: 'volumes not primary here' };
    // Every workload running: the read's counts are the ones to restore. One at 0: its count before
    // a scale-down is in an annotation the read does not keep.
    const replicas =
      runningIn(snapshot, workloads).length === workloads.length
        ? Object.fromEntries(workloads.map((w) => [workloadKey(w), replicasIn(snapshot, w)]))
        : await this.workloads.currentReplicas(workloads);
    if (Object.values(replicas).every((n) => n === 0)) return { app, action: 'none', detail: 'stopped' };
    await this.witness.recordProtection(app, {
      site,
      volumes: volumeSpecs(runbook, snapshot, site, pvs),
      replicas,
    });
    return { app, action: 'recorded' };
  }

  /**
   * Writes the witness's view into the application's namespaces on this site (the pivot-active-site
   * ConfigMap) when it changed since this guard last wrote it, and once a minute anyway (a namespace
   * made anew): not one write per application a pass.
   */
  private async recordSiteState(app: string, namespaces: string[], activeSite: string, epoch: number) {
    const view = JSON.stringify({ namespaces, activeSite, epoch });
    const last = this.written.get(app);
    if (last?.view === view && Date.now() - last.at < 60_000) return;
    await this.siteState.recordSiteState(app, namespaces, activeSite, epoch);
    this.written.set(app, { view, at: Date.now() });
  }

  /** Every volume of the application is primary on this site, as the storage reports it. */
  private isPrimary(runbook: Runbook, snapshot: SiteSnapshot): boolean {
    const site = this.api.site;
    const volumes = resolveVolumes(runbook, { takenAt: Date.now(), sites: { [site]: snapshot } }, site);
    return volumes.length > 0 && volumes.every((v) => v.replication[site]?.state === 'Primary');
  }

  private async primaryHere(runbook: Runbook): Promise<boolean> {
    const { snapshot } = await observeClaimedVolumes(this.api, runbook.spec.namespaces);
    // Unobservable: the guard cannot tell, so it keeps its hands off.
    return !snapshot.reachable || this.isPrimary(runbook, snapshot);
  }

  private async runningWorkloads(workloads: WorkloadRef[]): Promise<string[]> {
    const running: string[] = [];
    for (const w of workloads) {
      const obj =
        w.kind === 'StatefulSet'
          ? await this.api.apps.readNamespacedStatefulSet({ name: w.name, namespace: w.namespace })
          : await this.api.apps.readNamespacedDeployment({ name: w.name, namespace: w.namespace });
      if ((obj.spec?.replicas ?? 0) > 0) running.push(workloadKey(w));
    }
    return running;
  }
}

/**
 * Runbooks from the configured directory, read again whenever a file was added, removed or changed
 * (names, sizes and modification times); a broken set keeps the last good one. Hundreds of runbooks
 * are then not parsed and validated every pass.
 */
export function runbookSource(dir: string, sites: string[], log: Logger): () => Runbook[] {
  let last: Runbook[] = [];
  let seen = '';
  return () => {
    try {
      const files = readdirSync(dir)
        .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
        .sort()
        .map((f) => {
          const st = statSync(join(dir, f));
          return `${f}:${st.size}:${st.mtimeMs}`;
        })
        .join('|');
      if (files === seen) return last;
      last = loadRunbookDir(dir, sites);
      seen = files;
    } catch (err) {
      log.warn({ dir, err: String(err) }, 'runbooks not loaded; keeping the last good set');
    }
    return last;
  };
}

function replicasIn(snapshot: SiteSnapshot, w: WorkloadRef): number {
  return (
    snapshot.workloads.find((x) => x.kind === w.kind && x.namespace === w.namespace && x.name === w.name)
      ?.replicas ?? 0
  );
}

/** The workloads scaled above 0 in a read of the site. */
function runningIn(snapshot: SiteSnapshot, workloads: WorkloadRef[]): WorkloadRef[] {
  return workloads.filter((w) => replicasIn(snapshot, w) > 0);
}
