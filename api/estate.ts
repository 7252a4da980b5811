/**
 * The status of the estate: each protected application, where it runs, its epoch and fences, the
 * operation holding it, its replication lag against the RPO objective, and its drift. Read from
 * the shared snapshot of both sites (never a fresh listing per call) and the witness; served by
 * `GET /v1/apps` and pushed by the board's event stream.
 */
import type { PivotConfig } from '../config/types.ts';
import { checkDrift } from '../planner/drift.ts';
import type { Inputs } from '../planner/inputs.ts';
import { activeSite, resolveVolumes } from '../planner/resolve.ts';
import { parseDuration } from '../runbook/duration.ts';
import type { Witness } from '../witness/witness.ts';
import type { AppsResponse, AppStatus } from './contract.ts';
import type { ApiMetrics } from './metrics.ts';

export interface EstateDeps {
  config: PivotConfig;
  witness: Witness;
  status: () => Promise<Inputs>;
  metrics: ApiMetrics;
}

export async function estate({ config, witness, status, metrics }: EstateDeps): Promise<AppsResponse> {
  const inputs = await status();
  const apps = await Promise.all(
    inputs.runbooks.map(async (runbook): Promise<AppStatus> => {
      const name = runbook.metadata.name;
      const state = await witness.state(name);
      const active = activeSite(runbook, inputs.live);
      const site = active.kind === 'known' ? active.site : undefined;
      const volumes = site ? resolveVolumes(runbook, inputs.live, site) : [];
      const other = [runbook.spec.sites.primary, runbook.spec.sites.secondary].find((s) => s !== site);
      const syncs = volumes.map((v) => (other ? v.replication[other]?.lastSyncTime : undefined));
      const lagMs = syncs.every((t) => t)
        ? Math.max(0, ...syncs.map((t) => inputs.live.takenAt - Date.parse(t!)))
        : null;
      const rpoMs = parseDuration(runbook.spec.objectives.rpo) ?? 0;
      if (lagMs !== null) metrics.lag(name, lagMs / 1000, rpoMs / 1000);
      const drift = checkDrift(runbook, inputs.live, config);
      return {
        app: name,
        activeSite: site ?? null,
        epoch: state.epoch,
        fencedSites: state.fencedSites,
        operationRunning: (await witness.lockHolder(name)) ?? null,
        replicationLagMs: lagMs,
        rpoObjectiveMs: rpoMs,
        withinRpo: lagMs !== null && lagMs <= rpoMs,
        drift: {
          errors: drift.filter((d) => d.severity === 'error').length,
          warnings: drift.filter((d) => d.severity === 'warning').length,
        },
      };
    }),
  );
  return { apps, observedAt: new Date(inputs.live.takenAt).toISOString() };
}
