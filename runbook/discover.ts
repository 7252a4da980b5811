/**
 * `pivot runbook discover`: drafts a runbook from what runs in a namespace on one site
 * (StatefulSets, Deployments, claims and their VolumeReplications, Services). What it cannot know
 * (objectives, hooks, start order between workloads of the same kind) it guesses and marks with a
 * `# REVIEW:` comment; claims without a replication object are listed as unprotected.
 */
import { Document, isMap, isSeq, stringify, type Node } from 'yaml';
import type { SiteSnapshot } from '../planner/live-state.ts';
import { RUNBOOK_API_VERSION, RUNBOOK_KIND, type Runbook, type TrafficTarget } from './types.ts';

export interface DiscoverInput {
  snapshot: SiteSnapshot;
  namespace: string;
  /** The other site, when the configuration has exactly one other. */
  standby?: string;
  name?: string;
  /** Services with a selector, by name (the snapshot keeps only names). */
  serviceSelectors: Record<string, Record<string, string>>;
}

export interface Discovery {
  runbook: Runbook;
  /** Things a person must decide, each with the field it concerns. */
  review: Array<{ path: Array<string | number>; note: string }>;
  yaml: string;
}

export function discoverRunbook(input: DiscoverInput): Discovery {
  const { snapshot, namespace } = input;
  const review: Discovery['review'] = [];
  const workloads = snapshot.workloads
    .filter((w) => w.namespace === namespace)
    .sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'StatefulSet' ? -1 : 1))
    .map((w) => ({ kind: w.kind, name: w.name, startOrder: w.kind === 'StatefulSet' ? 1 : 2 }));
  if (workloads.length > 0) {
    review.push({
      path: ['spec', 'workloads'],
      note: 'start order guessed: StatefulSets (1) before Deployments (2)',
    });
  }
  const claims = snapshot.claims
    .filter((c) => c.namespace === namespace)
    .sort((a, b) => a.name.localeCompare(b.name));
  const volumes: Runbook['spec']['volumes'] = [];
  const unprotected: string[] = [];
  for (const claim of claims) {
    const vr = snapshot.replications.find((r) => r.namespace === namespace && r.name === claim.name);
    if (!vr) {
      unprotected.push(claim.name);
      continue;
    }
    volumes.push({
      name: claim.name,
      claim: claim.name,
      replication: { provider: 'csi-addons', volumeReplicationClass: vr.replicationClass ?? 'REVIEW' },
    });
  }
  if (unprotected.length > 0) {
    review.push({
      path: ['spec', 'volumes'],
      note: `not protected, no VolumeReplication: ${unprotected.join(', ')} (their data would not fail over)`,
    });
  }
  const traffic: TrafficTarget[] = snapshot.services
    .filter((s) => s.namespace === namespace && input.serviceSelectors[s.name])
    .map((s) => ({ kind: 'ServiceSelector', name: s.name, selector: input.serviceSelectors[s.name]! }));
  if (traffic.length > 0) {
    review.push({
      path: ['spec', 'traffic'],
      note: 'every Service with a selector; keep those clients reach the app through',
    });
  }
  const standby = input.standby ?? 'REVIEW';
  if (!input.standby) review.push({ path: ['spec', 'sites'], note: 'name the standby site' });
  review.push({ path: ['spec', 'objectives'], note: 'objectives are placeholders: set your RPO and RTO' });
  review.push({
    path: ['spec', 'hooks'],
    note: 'no hooks inferred: add pre-fence / post-promote checks (e.g. a database ping Job)',
  });

  const runbook: Runbook = {
    apiVersion: RUNBOOK_API_VERSION,
    kind: RUNBOOK_KIND,
    metadata: { name: input.name ?? namespace },
    spec: {
      namespaces: [namespace],
      sites: { primary: snapshot.site, secondary: standby },
      workloads,
      volumes,
      traffic,
      hooks: [],
      healthChecks: [{ name: 'workloads-ready', kind: 'WorkloadsReady', timeout: '5m' }],
      objectives: { rpo: '5m', rto: '30m' },
      approval: { failover: 'required' },
      priority: { tier: 100, dependsOn: [] },
    },
  };
  return { runbook, review, yaml: render(runbook, review, snapshot.site, namespace) };
}

function render(runbook: Runbook, review: Discovery['review'], site: string, namespace: string): string {
  const doc = new Document(runbook);
  doc.commentBefore = ` Drafted by \`pivot runbook discover --site ${site} --namespace ${namespace}\`.\n Review every REVIEW note, then validate: pivot runbook validate FILE`;
  for (const r of review) {
    const node = doc.getIn(r.path, true) as Node | undefined;
    if (node && (isMap(node) || isSeq(node) || node)) node.commentBefore = ` REVIEW: ${r.note}`;
  }
  return doc.toString({ lineWidth: 0 }) || stringify(runbook);
}
