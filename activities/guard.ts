/**
 * The fencing-epoch guard: a step whose epoch is stale refuses to act (docs/safety.md, invariant
 * 5). Mutating site activities call it when they start and again before each write, so a step
 * that writes many objects, or waits between writes, stops at its first write after another
 * operation moved the epoch on, rather than finishing on the authority it had when it started.
 */
import { StaleEpochError, type Witness } from '../witness/witness.ts';
import { FAILURE, failure } from './failures.ts';
import type { StepContext } from './types.ts';
import { switchedOff } from './unsafe.ts';

export async function guardEpoch(
  witness: Witness,
  ctx: StepContext,
  site: string,
  object: string,
): Promise<void> {
  if (switchedOff('no-epoch-guard')) return;
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
