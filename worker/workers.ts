/**
 * Pivot's Temporal workers. A site worker runs the activities that touch one site's Kubernetes
 * API, on that site's task queue, with that site's kubeconfig only (and the witness, to check the
 * fencing epoch before every mutating step). The control worker runs the workflows (bundled from
 * workflows/index.ts) and the witness activities, and no site I/O.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createControlActivities, createSiteActivities } from '../activities/index.ts';
import { connectConfiguredSite, type SiteAccess } from '../common/k8s.ts';
import { temporalConnectionOptions } from '../common/temporal-connection.ts';
import type { PivotConfig } from '../config/types.ts';
import { CONTROL_TASK_QUEUE, siteTaskQueue } from '../common/task-queues.ts';
import type { ControlOptions } from '../activities/control.ts';
import type { Witness } from '../witness/witness.ts';

/** workflows/index.ts from the sources (tsx, jest), workflows/index.js once compiled (dist/). */
export const WORKFLOWS_PATH = fileURLToPath(
  new URL(`../workflows/index${extname(import.meta.url)}`, import.meta.url),
);

/** The workers' connection, with the same transport security as the API's client. */
export function connectTemporal(temporal: PivotConfig['temporal']): Promise<NativeConnection> {
  return NativeConnection.connect(temporalConnectionOptions(temporal));
}

/**
 * Heartbeats leave the worker at most this often. A cancellation (an abort) reaches a waiting
 * activity only in the answer to a heartbeat, and the SDK's default throttle is 80% of the
 * heartbeat timeout: an aborted poll ran on for up to 24 s. One heartbeat a second per waiting
 * activity is cheap next to the polls it stops.
 */
const HEARTBEAT_THROTTLE = {
  maxHeartbeatThrottleInterval: '1 second',
  defaultHeartbeatThrottleInterval: '1 second',
};

export async function createSiteWorker(
  connection: NativeConnection,
  namespace: string,
  site: SiteAccess,
  witness: Witness,
): Promise<Worker> {
  const api = connectConfiguredSite(site);
  return Worker.create({
    connection,
    namespace,
    taskQueue: siteTaskQueue(site.name),
    activities: createSiteActivities(api, witness),
    ...HEARTBEAT_THROTTLE,
  });
}

export async function createControlWorker(
  connection: NativeConnection,
  namespace: string,
  witness: Witness,
  options: ControlOptions = {},
): Promise<Worker> {
  return Worker.create({
    connection,
    namespace,
    taskQueue: CONTROL_TASK_QUEUE,
    workflowsPath: WORKFLOWS_PATH,
    activities: createControlActivities(witness, options),
  });
}
