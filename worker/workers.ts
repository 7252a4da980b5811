/**
 * Pivot's Temporal workers. A site worker runs the activities that touch one site's Kubernetes
 * API, on that site's task queue, with that site's kubeconfig only. The control worker runs the
 * workflows (bundled from workflows/index.ts) and no site I/O.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { createSiteProbeActivities } from '../activities/site-probe.ts';
import { connectSite } from '../common/k8s.ts';
import { CONTROL_TASK_QUEUE, siteTaskQueue } from '../common/task-queues.ts';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface TemporalTarget {
  address: string;
  namespace: string;
}

export function connectTemporal(target: TemporalTarget): Promise<NativeConnection> {
  return NativeConnection.connect({ address: target.address });
}

export async function createSiteWorker(
  connection: NativeConnection,
  namespace: string,
  site: { name: string; kubeconfig: string },
): Promise<Worker> {
  const api = connectSite(site.name, site.kubeconfig);
  return Worker.create({
    connection,
    namespace,
    taskQueue: siteTaskQueue(site.name),
    activities: { ...createSiteProbeActivities(api) },
  });
}

export async function createControlWorker(connection: NativeConnection, namespace: string): Promise<Worker> {
  return Worker.create({
    connection,
    namespace,
    taskQueue: CONTROL_TASK_QUEUE,
    workflowsPath: WORKFLOWS_PATH,
  });
}
