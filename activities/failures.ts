/**
 * The error types activities raise, set explicitly (never inferred from class names, which a
 * bundler may rename) so that retry policies can name the non-retryable ones. Each failure carries
 * what the operator needs: the site, the object, and what to do next.
 */
import { ApplicationFailure } from '@temporalio/common';

export const FAILURE = {
  /** The epoch the step holds is no longer current: another change of active site happened. Final. */
  staleEpoch: 'StaleEpoch',
  /** The object the step must change is not there or not as the runbook says. Final. */
  precondition: 'PreconditionFailed',
  /** A wait ran out of time (pods not gone, sync not done, workloads not ready). Retryable. */
  notYet: 'NotYet',
  /** The storage refused the change (e.g. a promotion). Retryable: a fault may clear. */
  storageRefused: 'StorageRefused',
  /** The site's API did not answer. Retryable. */
  unreachable: 'SiteUnreachable',
  /** The storage's clock is too far off to prove what it reports (a sync stamped in the future). Final. */
  clockSkew: 'ClockSkew',
} as const;

export const NON_RETRYABLE: string[] = [FAILURE.staleEpoch, FAILURE.precondition, FAILURE.clockSkew];

export function failure(
  type: (typeof FAILURE)[keyof typeof FAILURE],
  site: string,
  object: string,
  message: string,
  next: string,
  cause?: unknown,
): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message: `${site}: ${object}: ${message}`,
    details: [{ site, object, next }],
    nonRetryable: NON_RETRYABLE.includes(type),
    ...(cause instanceof Error ? { cause } : {}),
  });
}
