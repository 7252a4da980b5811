/** What the failover workflows pass to activities (plain, serialisable data). */
import type { Runbook } from '../runbook/types.ts';

/** Carried by every mutating step: the application, the operation, and the epoch it holds. */
export interface StepContext {
  app: string;
  operationId: string;
  epoch: number;
}

export interface WorkloadRef {
  kind: 'StatefulSet' | 'Deployment';
  namespace: string;
  name: string;
  startOrder: number;
}

/** A replicated volume as it stands on the source: what the target needs to bind its replica. */
export interface VolumeSpec {
  namespace: string;
  claim: string;
  labels: Record<string, string>;
  volumeHandle: string;
  driver: string;
  accessModes: string[];
  storage: string;
  storageClassName: string;
  volumeMode: string;
}

export interface ClaimRef {
  namespace: string;
  name: string;
}

/** The runbook's workloads, each in its namespace (the runbook's first one by default). */
export function workloadRefs(runbook: Runbook): WorkloadRef[] {
  const namespace = runbook.spec.namespaces[0] ?? 'default';
  return runbook.spec.workloads.map((w) => ({
    kind: w.kind,
    namespace: w.namespace ?? namespace,
    name: w.name,
    startOrder: w.startOrder,
  }));
}

/** The key under which a workload's recorded replica count travels between steps. */
export function workloadKey(w: WorkloadRef): string {
  return `${w.kind}/${w.namespace}/${w.name}`;
}
