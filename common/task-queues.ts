/**
 * Temporal task queues. Activities that touch a site's Kubernetes API run on that site's queue,
 * served by a worker that runs in or next to that site with that site's credentials only; a dead
 * site's queue simply stops answering, which workflows see as a timeout. Workflows run on the
 * control queue.
 */

export const CONTROL_TASK_QUEUE = 'pivot-control';

export function siteTaskQueue(site: string): string {
  return `pivot-site-${site}`;
}
