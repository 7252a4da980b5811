/**
 * Which tenant owns each application (docs/tenancy.md): the runbook's `metadata.tenant`, else the
 * tenant whose namespaces hold the runbook's, else `default`. Pure: the configuration and the
 * runbooks in, the owners and the contradictions out.
 */
import type { TenantConfig } from '../config/types.ts';
import type { Runbook } from '../runbook/types.ts';

export const DEFAULT_TENANT = 'default';

export interface Tenancy {
  /** Application name → its tenant. */
  owners: Map<string, string>;
  /** What makes the ownership ambiguous or wrong, one sentence each, naming the runbook. */
  problems: string[];
}

export function tenancyOf(runbooks: Runbook[], tenants: TenantConfig[]): Tenancy {
  const known = new Set([DEFAULT_TENANT, ...tenants.map((t) => t.name)]);
  const byNamespace = new Map<string, string[]>();
  for (const t of tenants) {
    for (const ns of t.namespaces ?? []) byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), t.name]);
  }
  const problems: string[] = [];
  for (const [ns, owners] of byNamespace) {
    if (owners.length > 1)
      problems.push(`namespace ${ns} is given to ${owners.length} tenants: ${owners.join(', ')}`);
  }
  const owners = new Map<string, string>();
  for (const r of runbooks) {
    const app = r.metadata.name;
    const fromNamespaces = [...new Set(r.spec.namespaces.flatMap((ns) => byNamespace.get(ns) ?? []))];
    const named = r.metadata.tenant;
    if (named !== undefined && !known.has(named)) {
      problems.push(`runbook ${app} names tenant ${named}, which the configuration does not define`);
    }
    if (fromNamespaces.length > 1) {
      problems.push(
        `runbook ${app} spans namespaces of ${fromNamespaces.join(' and ')}: one tenant must own it`,
      );
    }
    if (named !== undefined && fromNamespaces.length > 0 && !fromNamespaces.includes(named)) {
      problems.push(
        `runbook ${app} names tenant ${named}, but its namespaces belong to ${fromNamespaces.join(', ')}`,
      );
    }
    owners.set(app, named ?? fromNamespaces[0] ?? DEFAULT_TENANT);
  }
  return { owners, problems };
}
