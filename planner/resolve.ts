/**
 * Runbook + live state → the concrete objects an operation touches: which claims each volume group
 * means, their PVs and volume handles, their replication objects on both sites, and which site is
 * active now. Pure.
 */
import type { Runbook, VolumeGroup } from '../runbook/types.ts';
import type { ClaimState, LiveState, ReplicationState, SiteSnapshot, VolumeState } from './live-state.ts';

export interface ResolvedVolume {
  group: string;
  namespace: string;
  claim: string;
  storageClassName?: string;
  accessModes: string[];
  requestedStorage?: string;
  pv?: VolumeState;
  /** The VolumeReplication named after the claim, per site. */
  replication: Record<string, ReplicationState | undefined>;
}

export function defaultNamespace(runbook: Runbook): string {
  return runbook.spec.namespaces[0] ?? 'default';
}

function matches(group: VolumeGroup, claim: ClaimState, fallbackNs: string): boolean {
  if (claim.namespace !== (group.namespace ?? fallbackNs)) return false;
  if (group.claim) return claim.name === group.claim;
  const labels = group.selector?.matchLabels ?? {};
  return Object.entries(labels).every(([k, v]) => claim.labels[k] === v);
}

/** The claims each volume group names, as they stand on `source` (where they exist). */
export function resolveVolumes(runbook: Runbook, live: LiveState, source: string): ResolvedVolume[] {
  const snap = live.sites[source];
  const ns = defaultNamespace(runbook);
  const out: ResolvedVolume[] = [];
  for (const group of runbook.spec.volumes) {
    for (const claim of snap?.claims ?? []) {
      if (!matches(group, claim, ns)) continue;
      const pv = snap?.volumes.find((v) => v.name === claim.volumeName);
      out.push({
        group: group.name,
        namespace: claim.namespace,
        claim: claim.name,
        ...(claim.storageClassName ? { storageClassName: claim.storageClassName } : {}),
        accessModes: claim.accessModes,
        ...(claim.requestedStorage ? { requestedStorage: claim.requestedStorage } : {}),
        ...(pv ? { pv } : {}),
        replication: Object.fromEntries(
          Object.values(live.sites).map((s) => [
            s.site,
            s.replications.find((r) => r.namespace === claim.namespace && r.name === claim.name),
          ]),
        ),
      });
    }
  }
  return out.sort((a, b) => `${a.namespace}/${a.claim}`.localeCompare(`${b.namespace}/${b.claim}`));
}

export type ActiveSite =
  | { kind: 'known'; site: string; basis: string }
  | { kind: 'split'; sites: string[] }
  | { kind: 'unknown'; reason: string };

function appReplications(runbook: Runbook, snap: SiteSnapshot): ReplicationState[] {
  const nss = new Set(runbook.spec.namespaces);
  return snap.replications.filter((r) => nss.has(r.namespace));
}

/**
 * Which site holds the application's primary volumes, from the replication objects' reported
 * state. Until the witness exists this is the only source; two primaries is split brain.
 */
export function activeSite(runbook: Runbook, live: LiveState): ActiveSite {
  const recorded = live.witness?.[runbook.metadata.name]?.activeSite;
  if (recorded) return { kind: 'known', site: recorded, basis: 'the witness records it as the active site' };
  const reachable = Object.values(live.sites).filter((s) => s.reachable);
  const primaries = reachable.filter((s) => appReplications(runbook, s).some((r) => r.state === 'Primary'));
  if (primaries.length > 1) return { kind: 'split', sites: primaries.map((s) => s.site) };
  if (primaries.length === 1)
    return { kind: 'known', site: primaries[0]!.site, basis: 'its VolumeReplications report Primary' };
  const unreachable = Object.values(live.sites).filter((s) => !s.reachable);
  const runbookSites = [runbook.spec.sites.primary, runbook.spec.sites.secondary];
  const candidates = unreachable.filter((s) => runbookSites.includes(s.site));
  if (candidates.length === 1) {
    return {
      kind: 'known',
      site: candidates[0]!.site,
      basis: 'no reachable site is primary, and it is the one site that cannot be asked',
    };
  }
  return { kind: 'unknown', reason: 'no site reports the application primary' };
}

/** The class on `target` that holds what `className` holds on `source` (storageClassMap). */
export function mapStorageClass(
  map: Array<Record<string, string>>,
  source: string,
  target: string,
  className: string,
): string {
  const entry = map.find((e) => e[source] === className);
  return entry?.[target] ?? className;
}
