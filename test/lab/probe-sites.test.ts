/**
 * The first Temporal slice, end to end on the lab: the control worker bundles the workflows (under
 * jest, from TypeScript), each site worker serves its own task queue, and probeSites reports a
 * killed site as unreachable instead of hanging.
 */
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { SITE_NAMES } from '../../lab/layout.ts';
import type { SiteReachability, probeSites } from '../../workflows/probe-sites.ts';
import { lab, status, uniqueName } from './helpers.ts';
import { connectPivot, type LabPivot } from './temporal.ts';

let workers: LabPivot;

beforeAll(async () => {
  workers = await connectPivot();
});

afterAll(async () => {
  await workers?.close();
  const s = await status();
  for (const st of s.sites) if (st.state !== 'running') await lab.reviveSite(st.name);
});

async function probe(timeoutMs: number): Promise<SiteReachability[]> {
  return workers.client.workflow.execute<typeof probeSites>('probeSites', {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: uniqueName('probe-sites'),
    args: [{ sites: [...SITE_NAMES], timeoutMs }],
  });
}

describe('probeSites', () => {
  it('reaches both sites through their own workers', async () => {
    const result = await probe(15_000);
    expect(result.map((r) => [r.site, r.reachable])).toEqual([
      ['dc-a', true],
      ['dc-b', true],
    ]);
    for (const r of result) {
      if (!r.reachable) throw new Error(r.reason);
      expect(r.serverVersion).toBe('v1.34.4');
      expect(r.readyNodes).toBe(3);
    }
  });

  it('reports a killed site as unreachable, with the reason, and still reaches the other', async () => {
    await lab.killSite('dc-b');
    const result = await probe(4_000);
    const [a, b] = result;
    expect(a).toMatchObject({ site: 'dc-a', reachable: true });
    expect(b).toMatchObject({ site: 'dc-b', reachable: false });
    expect(b?.reachable === false && b.reason).toBe(
      'dc-b: no answer within 4 s: the site, or its Pivot worker, is down',
    );
  });
});
