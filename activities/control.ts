/**
 * Control activities (the control worker, next to the witness): the operation lock and the epoch.
 */
import { LockHeldError, StaleEpochError, type AppWitnessState, type Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';

/** How long an operation's lock lives without renewal: longer than any operation should take. */
const LOCK_TTL_MS = 6 * 60 * 60 * 1000;

export function createControlActivities(witness: Witness) {
  return {
    /** Takes the application's lock for this operation and returns the witness state it starts from. */
    async beginOperation(app: string, operationId: string): Promise<AppWitnessState> {
      try {
        await witness.acquireLock(app, operationId, LOCK_TTL_MS);
      } catch (err) {
        if (err instanceof LockHeldError) {
          throw failure(
            FAILURE.precondition,
            'witness',
            `application ${app}`,
            err.message,
            'attach to the running operation',
          );
        }
        throw err;
      }
      await witness.audit(app, {
        actor: operationId,
        action: 'begin',
        detail: 'operation started',
        epoch: (await witness.state(app)).epoch,
      });
      return witness.state(app);
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

    /** Records the new active site: epoch + 1, by compare-and-set on the epoch the operation holds. */
    async recordActiveSite(
      app: string,
      operationId: string,
      expectEpoch: number,
      activeSite: string,
      reason: string,
    ): Promise<number> {
      try {
        return await witness.advanceEpoch(app, { expectEpoch, activeSite, actor: operationId, reason });
      } catch (err) {
        if (err instanceof StaleEpochError) {
          throw failure(
            FAILURE.staleEpoch,
            'witness',
            `application ${app}`,
            err.message,
            'another operation changed the active site meanwhile',
          );
        }
        throw err;
      }
    },
  };
}

export type ControlActivities = ReturnType<typeof createControlActivities>;
