/**
 * Determinism: histories recorded on the lab (test/unit/histories, by test/record-history.ts)
 * replay against today's workflow code without a nondeterminism error. A change that breaks one
 * needs `patched()`, not a new recording.
 */
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../lab/layout.ts';
import { WORKFLOWS_PATH } from '../../worker/workers.ts';

const dir = join(REPO_ROOT, 'test', 'unit', 'histories');
const histories = readdirSync(dir).filter((f) => f.endsWith('.binpb'));

describe('replay of recorded histories', () => {
  it('has a history for every workflow type and outcome recorded', () => {
    expect(histories.sort()).toEqual([
      'alert-trigger-cancelled.binpb',
      'alert-trigger-started.binpb',
      'drill-aborted.binpb',
      'drill-cancelled.binpb',
      'drill-failed-cleaned-up.binpb',
      'drill-passed.binpb',
      'failback-succeeded.binpb',
      'failover-needs-attention-retried.binpb',
      'probe-sites.binpb',
      'reprotect-succeeded.binpb',
      'scheduled-drill-passed.binpb',
      'site-switchover-succeeded.binpb',
      'switchover-aborted.binpb',
      'switchover-drill-passed.binpb',
      'switchover-rolled-back.binpb',
      'switchover-succeeded.binpb',
    ]);
  });

  for (const file of histories) {
    it(`replays ${file}`, async () => {
      const history = proto.temporal.api.history.v1.History.decode(readFileSync(join(dir, file)));
      await expect(
        Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, file),
      ).resolves.toBeUndefined();
    });
  }
});
