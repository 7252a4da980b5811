/**
 * The runbook: one YAML document per protected application (`apiVersion: pivot.dev/v1alpha1`,
 * `kind: Runbook`), describing what a failover must move and how to tell it worked. These types
 * are what the validator (validate.ts) produces from a document that passed every rule; the
 * planner, drift check and workflows read only this shape.
 */

export const RUNBOOK_API_VERSION = 'pivot.dev/v1alpha1';
export const RUNBOOK_KIND = 'Runbook';

/** A duration as written in YAML: "30s", "5m", "1h30m", "250ms". Parsed to ms by the validator. */
export type DurationText = string;

export const OPERATIONS = ['switchover', 'failover', 'reprotect', 'failback', 'drill'] as const;
export type Operation = (typeof OPERATIONS)[number];

export const WORKLOAD_KINDS = ['StatefulSet', 'Deployment'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

export interface Workload {
  kind: WorkloadKind;
  name: string;
  /** Defaults to the runbook's first namespace. */
  namespace?: string;
  /** Start order on the target: lower first; equal orders start together. Stop order is reversed. */
  startOrder: number;
}

/** Claims picked by name or by label selector (exactly one of the two). */
export interface VolumeSelector {
  namespace?: string;
  claim?: string;
  selector?: { matchLabels: Record<string, string> };
}

export const REPLICATION_PROVIDERS = ['csi-addons'] as const;
export type ReplicationProvider = (typeof REPLICATION_PROVIDERS)[number];

export interface VolumeGroup extends VolumeSelector {
  /** A name for the group, unique in the runbook (used in plans and errors). */
  name: string;
  replication: {
    provider: ReplicationProvider;
    /** csi-addons: the VolumeReplicationClass; the VolumeReplication objects are named after the claims. */
    volumeReplicationClass: string;
  };
}

export type TrafficTarget =
  | {
      /** A Service whose selector is switched on (target) and off (source). */
      kind: 'ServiceSelector';
      name: string;
      namespace?: string;
      selector: Record<string, string>;
    }
  | {
      /** A Service of type ExternalName pointed at each site's address. */
      kind: 'ServiceExternalName';
      name: string;
      namespace?: string;
      externalNames: Record<string, string>;
    }
  | {
      /** A selectorless Service whose EndpointSlice is rewritten with each site's addresses. */
      kind: 'EndpointSlice';
      name: string;
      namespace?: string;
      addresses: Record<string, string[]>;
      port: number;
    }
  | {
      /** An external-dns DNSEndpoint whose record targets each site's address. */
      kind: 'DNSEndpoint';
      name: string;
      namespace?: string;
      dnsName: string;
      recordType: 'A' | 'CNAME';
      targets: Record<string, string[]>;
    };

export const HOOK_PHASES = ['pre-fence', 'post-promote', 'post-failover'] as const;
export type HookPhase = (typeof HOOK_PHASES)[number];

export interface Hook {
  name: string;
  phase: HookPhase;
  /** Exactly one of job / exec. */
  job?: { image: string; command: string[]; namespace?: string };
  exec?: {
    namespace?: string;
    pod?: string;
    selector?: Record<string, string>;
    container?: string;
    command: string[];
  };
  timeout: DurationText;
  onError: 'fail' | 'continue';
}

export type HealthCheck =
  | { name: string; kind: 'WorkloadsReady'; timeout: DurationText }
  | { name: string; kind: 'Hook'; hook: string };

export interface Objectives {
  rpo: DurationText;
  rto: DurationText;
}

export type ApprovalPolicy = 'none' | 'required';

export interface Runbook {
  apiVersion: typeof RUNBOOK_API_VERSION;
  kind: typeof RUNBOOK_KIND;
  metadata: { name: string; labels?: Record<string, string>; tenant?: string };
  spec: {
    /** The application's namespaces; the first is the default for every object without one. */
    namespaces: string[];
    /** Where the application normally runs, and where it fails over to (site names of the config). */
    sites: { primary: string; secondary: string };
    workloads: Workload[];
    volumes: VolumeGroup[];
    traffic: TrafficTarget[];
    hooks: Hook[];
    healthChecks: HealthCheck[];
    objectives: Objectives;
    /** Per operation; defaults: failover `required`, the others `none`. */
    approval: Partial<Record<Operation, ApprovalPolicy>>;
    /** Site-wide ordering: lower tiers move first; dependsOn names other runbooks. */
    priority: { tier: number; dependsOn: string[] };
  };
}
