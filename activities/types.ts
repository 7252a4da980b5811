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

/**
 * A replicated volume as it stands on the source: what the target needs to bind its replica. It
 * is kept as JSON in the witness (the protection record): the optional fields were added later and
 * are absent from older records, which bind as before (the driver's defaults).
 */
export interface VolumeSpec {
  namespace: string;
  claim: string;
  labels: Record<string, string>;
  volumeHandle: string;
  driver: string;
  accessModes: string[];
  /** The claim's request (the target claim asks the same, at most `capacity`). */
  storage: string;
  storageClassName: string;
  volumeMode: string;
  /** The source PV's capacity (spec.capacity.storage), which may exceed the claim's request. */
  capacity?: string;
  /** The source PV's csi.fsType, csi.readOnly and csi.volumeAttributes (the driver's volume context). */
  fsType?: string;
  readOnly?: boolean;
  volumeAttributes?: Record<string, string>;
  /** The source PV's secret references: the Secrets must exist on the target under the same names. */
  controllerPublishSecretRef?: { name: string; namespace: string };
  nodeStageSecretRef?: { name: string; namespace: string };
  nodePublishSecretRef?: { name: string; namespace: string };
  controllerExpandSecretRef?: { name: string; namespace: string };
  nodeExpandSecretRef?: { name: string; namespace: string };
  /** The source PV's mountOptions. */
  mountOptions?: string[];
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
