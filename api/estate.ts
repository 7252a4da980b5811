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

/** What an application's status takes from the sites' snapshot: the same for every caller of it. */
interface FromSnapshot {
  app: string;
  activeSite: string | null;
  replicationLagMs: number | null;
  rpoObjectiveMs: number;
  drift: { errors: number; warnings: number };
}

/**
 * Computed once per snapshot (the drift check and volume resolution of every application cost
 * about a millisecond each: at 300 applications and a call a second, most of the API's CPU).
 */
const perSnapshot = new WeakMap<Inputs, FromSnapshot[]>();

function fromSnapshot(inputs: Inputs, config: PivotConfig): FromSnapshot[] {
  const known = perSnapshot.get(inputs);
  if (known) return known;
  const computed = inputs.runbooks.map((runbook): FromSnapshot => {
    const active = activeSite(runbook, inputs.live);
    const site = active.kind === 'known' ? active.site : undefined;
    const volumes = site ? resolveVolumes(runbook, inputs.live, site) : [];
    const other = [runbook.spec.sites.primary, runbook.spec.sites.secondary].find((s) => s !== site);
    const syncs = volumes.map((v) => (other ? v.replication[other]?.lastSyncTime : undefined));
    const lagMs = syncs.every((t) => t)
      ? Math.max(0, ...syncs.map((t) => inputs.live.takenAt - Date.parse(t!)))
      : null;
    const drift = checkDrift(runbook, inputs.live, config);
    return {
      app: runbook.metadata.name,
      activeSite: site ?? null,
      replicationLagMs: lagMs,
      rpoObjectiveMs: parseDuration(runbook.spec.objectives.rpo) ?? 0,
      drift: {
        errors: drift.filter((d) => d.severity === 'error').length,
        warnings: drift.filter((d) => d.severity === 'warning').length,
      },
    };
  });
  perSnapshot.set(inputs, computed);
  return computed;
}

export async function estate({ config, witness, status, metrics }: EstateDeps): Promise<AppsResponse> {
  const inputs = await status();
  const apps = await Promise.all(
    fromSnapshot(inputs, config).map(async (a): Promise<AppStatus> => {
      // The witness is read per call: epochs, fences and locks change between snapshots.
      const [state, holder] = await Promise.all([witness.state(a.app), witness.lockHolder(a.app)]);
      // The witness names the active site as of now; the snapshot may predate an operation that
      // just ended. Its lag is then the old site's: unknown until the next snapshot.
      const activeSite = state.activeSite ?? a.activeSite;
      const lagMs = activeSite === a.activeSite ? a.replicationLagMs : null;
      if (lagMs !== null) metrics.lag(a.app, lagMs / 1000, a.rpoObjectiveMs / 1000);
      return {
        app: a.app,
        activeSite,
        epoch: state.epoch,
        fencedSites: state.fencedSites,
        operationRunning: holder ?? null,
        replicationLagMs: lagMs,
        rpoObjectiveMs: a.rpoObjectiveMs,
        withinRpo: lagMs !== null && lagMs <= a.rpoObjectiveMs,
        drift: a.drift,
      };
    }),
  );
  return { apps, observedAt: new Date(inputs.live.takenAt).toISOString() };
}
