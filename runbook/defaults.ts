/**
 * The defaults of a runbook, filled in by the validator once a document passed every rule, so that
 * the planner and the workflows never handle an absent field. schema.ts states each one in the
 * description of its field, where editors show it.
 */
import type { HealthCheck, Hook, Operation, ApprovalPolicy, Runbook, TrafficTarget } from './types.ts';

/** Failover is the one operation taken in a hurry on incomplete information: a second person decides. */
export const APPROVAL_DEFAULTS: Record<Operation, ApprovalPolicy> = {
  switchover: 'none',
  failover: 'required',
  reprotect: 'none',
  failback: 'none',
  drill: 'none',
};

/** High enough that a runbook without a tier moves after every one that has been given a tier. */
export const DEFAULT_PRIORITY_TIER = 100;

/** A runbook as it may be written: the fields that have defaults may be absent. */
export type WrittenRunbook = Omit<Runbook, 'spec'> & {
  spec: Omit<Runbook['spec'], 'traffic' | 'hooks' | 'healthChecks' | 'approval' | 'priority'> & {
    traffic?: TrafficTarget[];
    hooks?: Hook[];
    healthChecks?: HealthCheck[];
    approval?: Runbook['spec']['approval'];
    priority?: Partial<Runbook['spec']['priority']>;
  };
};

/** The runbook with every default written out; `written` must have passed the schema. */
export function withDefaults(written: WrittenRunbook): Runbook {
  const { spec } = written;
  // The schema requires at least one namespace.
  const firstNamespace = spec.namespaces[0]!;
  const inNamespace = <T extends { namespace?: string }>(o: T): T => ({
    ...o,
    namespace: o.namespace ?? firstNamespace,
  });
  return {
    ...written,
    spec: {
      ...spec,
      workloads: spec.workloads.map(inNamespace),
      volumes: spec.volumes.map(inNamespace),
      traffic: (spec.traffic ?? []).map(inNamespace),
      hooks: (spec.hooks ?? []).map((h) => ({
        ...h,
        ...(h.job ? { job: inNamespace(h.job) } : {}),
        ...(h.exec ? { exec: inNamespace(h.exec) } : {}),
      })),
      healthChecks: spec.healthChecks ?? [],
      approval: { ...APPROVAL_DEFAULTS, ...spec.approval },
      priority: {
        tier: spec.priority?.tier ?? DEFAULT_PRIORITY_TIER,
        dependsOn: spec.priority?.dependsOn ?? [],
      },
    },
  };
}
