/**
 * Control activities (the control worker, next to the witness): the operation lock and the epoch.
 */
import type { StartedOperation } from '../api/operations.ts';
import type { AlertRule } from '../config/types.ts';
import { StorageSimClient } from '../lab/storage-sim/client.ts';
import type { DrillInput } from '../workflows/drill.ts';
import type { MeasuredLoss } from '../workflows/progress.ts';
import { LockHeldError, StaleEpochError, type AppWitnessState, type Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import type { VolumeSpec } from './types.ts';

/**
 * What an unplanned failover needs when the source cannot be asked: the application's volumes and
 * replica counts as last seen on its active site (recorded by every operation's preflight and by
 * the site workers' guard).
 */
export interface ProtectionRecord {
  site: string;
  volumes: VolumeSpec[];
  replicas: Record<string, number>;
}

export interface ControlOptions {
  /** The lab's simulated array, to measure the data a promotion lost (absent in production). */
  storageSimulatorUrl?: string;
  /** Plans and starts what an alert rule asks for (api/operations.ts), as the API would. */
  startAlertOperation?: (rule: AlertRule) => Promise<{ operations: StartedOperation[]; detail?: string }>;
  /**
   * The state in Temporal of the workflow run holding a lock (`<workflow id>/<run id>`; undefined:
   * Temporal does not know it, as after its retention): lets a new operation take over the lock of
   * one that was terminated.
   */
  operationStatus?: (
    holder: string,
  ) => Promise<{ running: boolean; status: string; closedAt?: Date } | undefined>;
  /** Plans the drills a schedule asks for, from the current runbooks and sites. */
  planDrills?: (request: DrillRequest) => Promise<PlannedDrills>;
}

/** What a drill schedule asks for when it fires. */
export interface DrillRequest {
  apps?: string[];
  site?: string;
  schedule: string;
  reason: string;
}

export interface PlannedDrills {
  drills: DrillInput[];
  /** Applications the plan refuses, with why. */
  refused: string[];
}

const staleEpoch = (app: string, err: StaleEpochError) =>
  failure(
    FAILURE.staleEpoch,
    'witness',
    `application ${app}`,
    err.message,
    'another operation changed the active site meanwhile',
  );

/**
 * How long an operation's lock lives without renewal: longer than any step takes; operations that
 * wait for a person renew it every hour (workflows/engine.ts), so it outlives only a terminated one.
 */
const LOCK_TTL_MS = 6 * 60 * 60 * 1000;

/**
 * How long after its holder's workflow closed (Temporal's terminate runs no code, so the lock stays)
 * a new operation may take the lock over: by then no activity of the closed one still acts. The
 * longest an activity that sends no heartbeat runs is its one-minute start-to-close timeout
 * (workflows/engine.ts PROFILES); those that heartbeat learn of the close at their next heartbeat.
 */
export const LOCK_TAKEOVER_GRACE_MS = 60_000;

export function createControlActivities(witness: Witness, options: ControlOptions = {}) {
  /** Takes or renews the operation's lock; another holder is a precondition failure saying what to do. */
  const holdLock = async (app: string, operationId: string, prefix: string, next: string): Promise<void> => {
    try {
      await witness.acquireLock(app, operationId, LOCK_TTL_MS);
    } catch (err) {
      if (!(err instanceof LockHeldError)) throw err;
      const refuse = (message: string, what: string) =>
        failure(FAILURE.precondition, 'witness', `application ${app}`, `${prefix}${message}`, what);
      const holder = options.operationStatus
        ? await options.operationStatus(err.holder)
        : { running: true, status: '' };
      if (holder?.running) throw refuse(err.message, next);
      const closedAt = holder?.closedAt?.getTime();
      if (closedAt !== undefined && Date.now() < closedAt + LOCK_TAKEOVER_GRACE_MS) {
        const from = new Date(closedAt + LOCK_TAKEOVER_GRACE_MS).toISOString();
        throw refuse(
          `the lock's holder ${err.holder} is closed (${holder!.status}) but may still have a step in flight until ${from}`,
          `start the operation again from ${from}, when the lock can be taken over`,
        );
      }
      if (!(await witness.takeOverLock(app, err.holder, operationId, LOCK_TTL_MS))) {
        throw refuse(`the lock changed hands while ${operationId} took it over from ${err.holder}`, next);
      }
      await witness.audit(app, {
        actor: operationId,
        action: 'lock-taken-over',
        detail: `took the lock over from ${err.holder} (${holder ? `${holder.status} at ${holder.closedAt?.toISOString() ?? 'an unknown time'}` : 'unknown to Temporal'})`,
        epoch: (await witness.state(app)).epoch,
      });
    }
  };

  return {
    /** The drills a schedule's selection plans now (the standby of each application as it stands). */
    async planDrills(request: DrillRequest): Promise<PlannedDrills> {
      if (!options.planDrills) throw new Error('this worker has no configuration to plan drills with');
      return options.planDrills(request);
    },

    /** The witness's view of an application (active site, epoch, fenced sites), read only. */
    async witnessState(app: string): Promise<AppWitnessState> {
      return witness.state(app);
    },

    /** Keeps a finished drill's evidence for its retention, and writes it to the audit trail. */
    async recordDrill(
      app: string,
      id: string,
      report: { endedAt?: string; outcome: string },
      retentionDays: number,
    ): Promise<void> {
      const ended = Date.parse(report.endedAt ?? '') || Date.now();
      await witness.saveDrill(id, ended, JSON.stringify(report), retentionDays * 24 * 60 * 60 * 1000);
      await witness.audit(app, {
        actor: id,
        action: 'drill',
        detail: `drill ${id} ended ${report.outcome}`,
        epoch: (await witness.state(app)).epoch,
      });
    },

    /** Takes the application's lock for this operation and returns the witness state it starts from. */
    async beginOperation(app: string, operationId: string): Promise<AppWitnessState> {
      await holdLock(app, operationId, '', 'attach to the running operation');
      await witness.audit(app, {
        actor: operationId,
        action: 'begin',
        detail: 'operation started',
        epoch: (await witness.state(app)).epoch,
      });
      return witness.state(app);
    },

    /** Writes an operator's decision that the workflow acted on (an attestation, say) to the audit trail. */
    async auditDecision(
      app: string,
      entry: { actor: string; action: string; detail: string },
    ): Promise<void> {
      await witness.audit(app, { ...entry, epoch: (await witness.state(app)).epoch });
    },

    /** Records that `app` relies on the storage fence of `site`'s networks; returns every owner. */
    async claimSiteFence(site: string, app: string): Promise<string[]> {
      return witness.addFenceOwner(site, app);
    },

    /** `app` no longer relies on the storage fence of `site`; returns the owners left. */
    async releaseSiteFence(site: string, app: string): Promise<string[]> {
      return witness.removeFenceOwner(site, app);
    },

    /** Renews the lock this operation holds (a long wait for a person); refuses if another holds it. */
    async renewLock(app: string, operationId: string): Promise<void> {
      await holdLock(
        app,
        operationId,
        "the operation's lock was lost: ",
        'close this operation and find who took the lock',
      );
    },

    async endOperation(app: string, operationId: string, outcome: string): Promise<void> {
      await witness.audit(app, {
        actor: operationId,
        action: 'end',
        detail: outcome,
        epoch: (await witness.state(app)).epoch,
      });
      await witness.releaseLock(app, operationId);
    },

    claimCoolDown(rule: string, ms: number, holder?: string): Promise<boolean> {
      return witness.claimCoolDown(rule, ms, holder);
    },

    releaseCoolDown(rule: string, holder: string): Promise<boolean> {
      return witness.releaseCoolDown(rule, holder);
    },

    async startAlertOperation(rule: AlertRule): Promise<{ operations: StartedOperation[]; detail?: string }> {
      if (!options.startAlertOperation) {
        throw failure(
          FAILURE.precondition,
          'control',
          `alert rule ${rule.name}`,
          'this worker cannot start operations (no configuration given)',
          'run the control worker with --config',
        );
      }
      return options.startAlertOperation(rule);
    },

    async recordProtection(app: string, record: ProtectionRecord): Promise<void> {
      await witness.recordProtection(app, record);
    },

    async protection(app: string): Promise<(ProtectionRecord & { at: string }) | undefined> {
      const got = await witness.protection<ProtectionRecord>(app);
      return got ? { ...got.record, at: got.at } : undefined;
    },

    /**
     * Fences `site` in the witness and advances the epoch (unplanned failover): from now on every
     * step the old site's side holds is stale. Idempotent for the operation holding the lock.
     */
    async fenceSite(app: string, operationId: string, expectEpoch: number, site: string): Promise<number> {
      const now = await witness.state(app);
      if (now.epoch === expectEpoch + 1 && now.fencedSites.includes(site)) {
        await witness.confirmDurable(app);
        return now.epoch;
      }
      try {
        return await witness.advanceEpoch(app, {
          expectEpoch,
          fence: site,
          actor: operationId,
          reason: `unplanned failover: ${site} fenced`,
        });
      } catch (err) {
        if (err instanceof StaleEpochError) throw staleEpoch(app, err);
        throw err;
      }
    },

    /** Lifts the witness fence of `site` (reprotect), advancing the epoch. Idempotent likewise. */
    async unfenceSite(app: string, operationId: string, expectEpoch: number, site: string): Promise<number> {
      const now = await witness.state(app);
      if (now.epoch === expectEpoch + 1 && !now.fencedSites.includes(site)) {
        await witness.confirmDurable(app);
        return now.epoch;
      }
      try {
        return await witness.advanceEpoch(app, {
          expectEpoch,
          unfence: site,
          actor: operationId,
          reason: `reprotect: ${site} resynced and unfenced`,
        });
      } catch (err) {
        if (err instanceof StaleEpochError) throw staleEpoch(app, err);
        throw err;
      }
    },

    /** Records the active site at the epoch the operation holds (no advance). */
    async setActiveSite(app: string, operationId: string, epoch: number, site: string): Promise<void> {
      try {
        await witness.setActiveSite(app, {
          expectEpoch: epoch,
          activeSite: site,
          actor: operationId,
          reason: 'unplanned failover completed',
        });
      } catch (err) {
        if (err instanceof StaleEpochError) throw staleEpoch(app, err);
        throw err;
      }
    },

    /**
     * On the lab: the writes the volumes' copies on `lostSite` hold that the new primary does not,
     * counted by the simulated array. Undefined where no simulator is configured.
     */
    async measureDataLoss(handles: string[], lostSite: string): Promise<MeasuredLoss | undefined> {
      if (!options.storageSimulatorUrl) return undefined;
      const all = await new StorageSimClient(options.storageSimulatorUrl).volumes();
      const loss: MeasuredLoss = { writes: 0, windowMs: 0, volumes: [] };
      for (const handle of handles) {
        const v = all.find((x) => x.handle === handle);
        const copy = v?.copies.find((c) => c.site === lostSite);
        if (!v || !copy) continue;
        const writes = copy.writesNotOnPrimary;
        loss.writes += writes;
        loss.volumes.push({ handle, ...(v.origin.claim ? { claim: v.origin.claim } : {}), writes });
        if (writes > 0 && copy.lastWriteAt && v.lastSyncTime) {
          loss.windowMs = Math.max(loss.windowMs, Date.parse(copy.lastWriteAt) - Date.parse(v.lastSyncTime));
        }
      }
      return loss;
    },

    /** Records the new active site: epoch + 1, by compare-and-set on the epoch the operation holds. */
    async recordActiveSite(
      app: string,
      operationId: string,
      expectEpoch: number,
      activeSite: string,
      reason: string,
    ): Promise<number> {
      // A retry after the advance landed finds it done (the lock keeps every other writer out).
      const now = await witness.state(app);
      if (now.epoch === expectEpoch + 1 && now.activeSite === activeSite) {
        await witness.confirmDurable(app);
        return now.epoch;
      }
      try {
        return await witness.advanceEpoch(app, { expectEpoch, activeSite, actor: operationId, reason });
      } catch (err) {
        if (err instanceof StaleEpochError) throw staleEpoch(app, err);
        throw err;
      }
    },
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
