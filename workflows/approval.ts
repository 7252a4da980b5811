/**
 * The approval kernel: who may approve an operation, checked by every workflow that waits for an
 * approval (an application's operation, a site operation, a drill that moves production), in its
 * Update validator, so that a refused approval is an error for the caller and never an event in
 * the workflow's history.
 */
import type { DecisionRequest } from './engine.ts';

export interface ApprovalRule {
  /** Who asked for the operation. */
  requestedBy: string;
  /** The approver must be another person than the requester. */
  twoPersonRule?: boolean;
  /** What is approved, for the messages: "the failover of orders". */
  what: string;
}

/** Throws, with what to do instead, unless `r` may approve under `rule`. */
export function validateApprover(r: DecisionRequest, rule: ApprovalRule): void {
  if (typeof r?.by !== 'string' || r.by.trim() === '') throw new Error('say who decides (by)');
  if (rule.twoPersonRule && r.by === rule.requestedBy) {
    throw new Error(
      `two-person rule: ${r.by} requested ${rule.what} and cannot approve it; another approver must`,
    );
  }
}
