/**
 * The fencing-epoch guard every mutating site activity passes first: a step whose epoch is stale
 * refuses to act (docs/safety.md, invariant 5).
 */
import { StaleEpochError, type Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import type { StepContext } from './types.ts';

export async function guardEpoch(
  witness: Witness,
  ctx: StepContext,
  site: string,
  object: string,
): Promise<void> {
  try {
    await witness.checkEpoch(ctx.app, ctx.epoch);
  } catch (err) {
    if (err instanceof StaleEpochError) {
      throw failure(
        FAILURE.staleEpoch,
        site,
        object,
        err.message,
        'another operation changed the active site: re-plan from the current state',
        err,
      );
    }
    throw err;
  }
}
