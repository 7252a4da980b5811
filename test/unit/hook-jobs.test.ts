/**
 * How a Job hook's Job is named: one per attempt of the step (its workflow run and activity id),
 * the same for the same activity delivered again, and always a valid DNS label.
 */
import { hookAttemptKey, hookJobName } from '../../activities/hooks.ts';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const run = { workflowId: 'pivot-orders', runId: '0199a0c4-5e2b-7f3a-9c1d-2b8e4f6a7c90' };

describe('hookAttemptKey', () => {
  it('is the same for a redelivery of the activity, and differs for a new activity or run', () => {
    const first = hookAttemptKey({ workflowExecution: run, activityId: '12' });
    expect(hookAttemptKey({ workflowExecution: run, activityId: '12' })).toBe(first);
    expect(hookAttemptKey({ workflowExecution: run, activityId: '13' })).not.toBe(first);
    expect(hookAttemptKey({ workflowExecution: { ...run, runId: 'another' }, activityId: '12' })).not.toBe(
      first,
    );
  });

  it('uses the activity run id of an activity no workflow started', () => {
    expect(hookAttemptKey({ activityId: 'a', activityRunId: 'r1' })).not.toBe(
      hookAttemptKey({ activityId: 'a', activityRunId: 'r2' }),
    );
  });
});

describe('hookJobName', () => {
  it('carries the hook, the epoch and the attempt', () => {
    const a = hookJobName('db-ping', 3, 'run/12');
    expect(a).toMatch(/^pivot-db-ping-e3-[0-9a-f]{10}$/);
    expect(hookJobName('db-ping', 3, 'run/12')).toBe(a);
    expect(hookJobName('db-ping', 3, 'run/13')).not.toBe(a);
    expect(hookJobName('db-ping', 4, 'run/12')).not.toBe(a);
  });

  it('stays a DNS label of at most 63 characters, shortening only the hook name', () => {
    for (const hook of ['a'.repeat(63), `${'a'.repeat(40)}-${'b'.repeat(22)}`, 'x']) {
      for (const epoch of [0, 7, 123_456_789]) {
        const name = hookJobName(hook, epoch, 'run/1');
        expect(name.length).toBeLessThanOrEqual(63);
        expect(name).toMatch(DNS_LABEL);
        expect(name).toContain(`-e${epoch}-`);
      }
    }
    // Cut right after a dash, the hook's part does not end in one.
    const room = 63 - 'pivot-'.length - '-e0-0123456789'.length;
    expect(hookJobName(`${'a'.repeat(room - 1)}-bbb`, 0, 'k')).toMatch(
      new RegExp(`^pivot-a{${room - 1}}-e0-`),
    );
  });
});
