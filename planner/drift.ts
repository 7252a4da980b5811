/**
 * The drift check (`pivot check`): compares a runbook with both sites' live state and reports
 * every problem that would make a failover fail or unsafe, before anyone needs one. Pure.
 */
import type { PivotConfig } from '../config/types.ts';
import { parseDuration } from '../runbook/duration.ts';
import type { Runbook } from '../runbook/types.ts';
import { REQUIRED_CRDS, type LiveState } from './live-state.ts';
import { activeSite, defaultNamespace, mapStorageClass, resolveVolumes } from './resolve.ts';

export const SEVERITIES = ['error', 'warning'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface DriftIssue {
  app: string;
  severity: Severity;
  /** A stable identifier of the rule, for scripts and tests. */
  rule:
    | 'site-unreachable'
    | 'crd-missing'
    | 'active-site-unknown'
    | 'split-brain'
    | 'no-claims'
    | 'replication-missing'
    | 'replication-unhealthy'
    | 'replication-lag'
    | 'storage-class-missing'
    | 'reclaim-policy'
    | 'access-mode-change'
    | 'workload-missing'
    | 'service-missing';
  site: string;
  /** The object concerned, as kind namespace/name. */
  object: string;
  message: string;
  hint: string;
}

export function checkDrift(
  runbook: Runbook,
  live: LiveState,
  config: Pick<PivotConfig, 'storageClassMap'>,
): DriftIssue[] {
  const app = runbook.metadata.name;
  const issues: DriftIssue[] = [];
  const add = (i: Omit<DriftIssue, 'app'>): void => {
    issues.push({ app, ...i });
  };
  const { primary, secondary } = runbook.spec.sites;
  for (const site of [primary, secondary]) {
    const snap = live.sites[site];
    if (!snap?.reachable) {
      add({
        severity: 'error',
        rule: 'site-unreachable',
        site,
        object: `site ${site}`,
        message: `the site's Kubernetes API did not answer${snap?.error ? `: ${snap.error}` : ''}`,
        hint: 'check the site; only an unplanned failover can proceed without it',
      });
      continue;
    }
    for (const crd of REQUIRED_CRDS.filter((c) => !snap.crds.includes(c))) {
      add({
        severity: 'error',
        rule: 'crd-missing',
        site,
        object: `CustomResourceDefinition ${crd}`,
        message: 'the CRD is not installed',
        hint: 'install csi-addons (or the lab CRDs) on this site',
      });
    }
  }

  const active = activeSite(runbook, live);
  if (active.kind === 'split') {
    add({
      severity: 'error',
      rule: 'split-brain',
      site: active.sites.join(','),
      object: `application ${app}`,
      message: `more than one site reports the application's volumes Primary: ${active.sites.join(', ')}`,
      hint: 'fence and demote the stale side before anything else (reprotect)',
    });
    return issues;
  }
  if (active.kind === 'unknown') {
    add({
      severity: 'error',
      rule: 'active-site-unknown',
      site: `${primary},${secondary}`,
      object: `application ${app}`,
      message: active.reason,
      hint: 'create the VolumeReplications on the active site (replicationState primary)',
    });
    return issues;
  }
  const source = active.site;
  const target = source === primary ? secondary : primary;
  const sourceSnap = live.sites[source];
  const targetSnap = live.sites[target];
  if (!sourceSnap?.reachable) return issues;

  const volumes = resolveVolumes(runbook, live, source);
  if (volumes.length === 0) {
    add({
      severity: 'error',
      rule: 'no-claims',
      site: source,
      object: `application ${app}`,
      message: 'no claim on the active site matches the runbook volume groups',
      hint: 'check the volume groups (claim names, selectors, namespaces)',
    });
  }
  const rpoMs = parseDuration(runbook.spec.objectives.rpo) ?? Infinity;
  for (const v of volumes) {
    const object = `PersistentVolumeClaim ${v.namespace}/${v.claim}`;
    const srcVr = v.replication[source];
    if (!srcVr) {
      add({
        severity: 'error',
        rule: 'replication-missing',
        site: source,
        object,
        message: 'the claim has no VolumeReplication (named after it) on the active site',
        hint: `create VolumeReplication ${v.namespace}/${v.claim} with replicationState primary`,
      });
    } else if (
      !srcVr.current ||
      srcVr.conditions['Degraded']?.status === 'True' ||
      srcVr.conditions['Completed']?.status === 'False'
    ) {
      const why = !srcVr.current
        ? 'its status is stale (observedGeneration behind generation)'
        : (srcVr.conditions['Degraded']?.message ?? srcVr.conditions['Completed']?.message ?? 'degraded');
      add({
        severity: 'error',
        rule: 'replication-unhealthy',
        site: source,
        object: `VolumeReplication ${v.namespace}/${v.claim}`,
        message: `replication is not healthy: ${why}`,
        hint: 'look at the VolumeReplication conditions and the storage',
      });
    } else {
      const lagMs = srcVr.lastSyncTime ? live.takenAt - Date.parse(srcVr.lastSyncTime) : Infinity;
      if (lagMs > rpoMs) {
        add({
          severity: 'error',
          rule: 'replication-lag',
          site: source,
          object: `VolumeReplication ${v.namespace}/${v.claim}`,
          message: srcVr.lastSyncTime
            ? `last sync ${Math.round(lagMs / 1000)} s ago, beyond the RPO objective ${runbook.spec.objectives.rpo}`
            : 'never synced',
          hint: 'check the replication link; a failover now would lose more than the objective',
        });
      }
    }
    if (targetSnap?.reachable) {
      const tgtVr = v.replication[target];
      if (!tgtVr) {
        add({
          severity: 'error',
          rule: 'replication-missing',
          site: target,
          object,
          message: 'the replica has no VolumeReplication on the standby site',
          hint: `create VolumeReplication ${v.namespace}/${v.claim} on ${target} with replicationState secondary`,
        });
      } else if (
        tgtVr.state !== 'Secondary' ||
        tgtVr.desired !== 'secondary' ||
        tgtVr.conditions['Degraded']?.status === 'True'
      ) {
        add({
          severity: 'error',
          rule: 'replication-unhealthy',
          site: target,
          object: `VolumeReplication ${v.namespace}/${v.claim}`,
          message: `the replica is ${tgtVr.state ?? 'in an unknown state'}${tgtVr.desired !== 'secondary' ? ` with ${tgtVr.desired} requested` : ''}${tgtVr.conditions['Degraded']?.status === 'True' ? ' and degraded' : ''}`,
          hint: 'resync the replica (replicationState resync) before relying on it',
        });
      }
      if (v.storageClassName) {
        const mapped = mapStorageClass(config.storageClassMap, source, target, v.storageClassName);
        if (!targetSnap.storageClasses.some((c) => c.name === mapped)) {
          add({
            severity: 'error',
            rule: 'storage-class-missing',
            site: target,
            object: `StorageClass ${mapped}`,
            message: `the claim's class ${v.storageClassName} maps to ${mapped}, which does not exist on ${target}`,
            hint: 'create the class on the standby site or fix storageClassMap',
          });
        }
      }
      const existing = targetSnap.claims.find((c) => c.namespace === v.namespace && c.name === v.claim);
      if (existing && existing.accessModes.join(',') !== v.accessModes.join(',')) {
        add({
          severity: 'error',
          rule: 'access-mode-change',
          site: target,
          object,
          message: `access modes would change: ${v.accessModes.join(',')} on ${source}, ${existing.accessModes.join(',')} on ${target}`,
          hint: 'delete the stale claim on the standby site or align its access modes',
        });
      }
    }
    for (const [site, snap] of [
      [source, sourceSnap],
      [target, targetSnap],
    ] as const) {
      if (!snap?.reachable) continue;
      const pv =
        site === source
          ? v.pv
          : snap.volumes.find((p) => p.claim?.namespace === v.namespace && p.claim.name === v.claim);
      if (pv && pv.reclaimPolicy !== 'Retain') {
        add({
          severity: 'error',
          rule: 'reclaim-policy',
          site,
          object: `PersistentVolume ${pv.name}`,
          message: `a replicated volume is held by a PV with reclaim policy ${pv.reclaimPolicy}: releasing the claim would destroy it`,
          hint: `kubectl patch pv ${pv.name} -p '{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}'`,
        });
      }
    }
  }

  if (targetSnap?.reachable) {
    const ns = defaultNamespace(runbook);
    for (const w of runbook.spec.workloads) {
      const wns = w.namespace ?? ns;
      if (!targetSnap.workloads.some((x) => x.kind === w.kind && x.namespace === wns && x.name === w.name)) {
        add({
          severity: 'error',
          rule: 'workload-missing',
          site: target,
          object: `${w.kind} ${wns}/${w.name}`,
          message: 'the workload does not exist on the standby site',
          hint: 'deploy it there at 0 replicas (GitOps or `pivot runbook discover` shows what to create)',
        });
      }
    }
    for (const t of runbook.spec.traffic) {
      if (t.kind === 'DNSEndpoint') continue;
      const tns = t.namespace ?? ns;
      if (!targetSnap.services.some((s) => s.namespace === tns && s.name === t.name)) {
        add({
          severity: 'error',
          rule: 'service-missing',
          site: target,
          object: `Service ${tns}/${t.name}`,
          message: 'the Service traffic is repointed through does not exist on the standby site',
          hint: 'create it on the standby site',
        });
      }
    }
  }
  return issues;
}
