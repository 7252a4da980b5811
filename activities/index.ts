/**
 * Every activity, built by factories over narrow dependencies: a site worker gets one site's API
 * and the witness; the control worker gets the witness only. Workflows import the types.
 */
import type { SiteApi } from '../common/k8s.ts';
import type { Witness } from '../witness/witness.ts';
import { createClaimActivities } from './claims.ts';
import { createDrillActivities } from './drill.ts';
import { withSiteErrors } from './api-errors.ts';
import { createFencingActivities } from './fencing.ts';
import { createHookActivities } from './hooks.ts';
import { createReplicationActivities } from './replication.ts';
import { createSiteProbeActivities } from './site-probe.ts';
import { createSiteStateActivities } from './site-state.ts';
import { createTrafficActivities } from './traffic.ts';
import { createWorkloadActivities } from './workloads.ts';

export function createSiteActivities(api: SiteApi, witness: Witness) {
  return withSiteErrors(api.site, {
    ...createSiteProbeActivities(api),
    ...createWorkloadActivities(api, witness),
    ...createReplicationActivities(api, witness),
    ...createClaimActivities(api, witness),
    ...createTrafficActivities(api, witness),
    ...createSiteStateActivities(api),
    ...createHookActivities(api, witness),
    ...createFencingActivities(api, witness),
    ...createDrillActivities(api, witness),
  });
}

export type SiteActivities = ReturnType<typeof createSiteActivities>;
export { createControlActivities, type ControlActivities, type ProtectionRecord } from './control.ts';
