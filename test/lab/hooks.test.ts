/**
 * Hooks on a lab site: an exec hook runs its command in a Ready pod the selector picks (kwok runs
 * it on this machine, see lab/sites.ts) and returns its output; a failing command fails the hook
 * with its status and stderr; no Ready pod is a retryable "not yet". Job hooks are exercised by
 * every operation of orders (post-promote mysql-ping).
 */
import { Redis } from 'ioredis';
import { createHookActivities } from '../../activities/hooks.ts';
import type { Hook } from '../../runbook/types.ts';
import { Witness } from '../../witness/witness.ts';
import { site, status, uniqueName } from './helpers.ts';

const dcA = site('dc-a');
let redis: Redis;
let hooks: ReturnType<typeof createHookActivities>;
const ctx = { app: 'hooks-test', operationId: 'test', epoch: 0 };

beforeAll(async () => {
  redis = new Redis((await status()).redis.url, { maxRetriesPerRequest: 1 });
  hooks = createHookActivities(dcA, new Witness(redis, uniqueName('hooks')));
});

afterAll(async () => {
  await redis?.quit();
});

function execHook(
  command: string[],
  selector: Record<string, string> = { 'app.kubernetes.io/name': 'mysql' },
): Hook {
  return {
    name: 'check',
    phase: 'post-promote',
    exec: { selector, command },
    timeout: '30s',
    onError: 'fail',
  };
}

describe('exec hooks', () => {
  it('runs the command in a Ready pod and returns its output', async () => {
    const out = await hooks.runExecHook(
      ctx,
      execHook(['sh', '-c', 'echo "pong from $PIVOT_LAB_SITE"']),
      'orders',
      30_000,
    );
    expect(out).toBe('pong from dc-a');
  });

  it('fails with the status and stderr of a failing command', async () => {
    await expect(
      hooks.runExecHook(ctx, execHook(['sh', '-c', 'echo replica lagging >&2; exit 3']), 'orders', 30_000),
    ).rejects.toThrow(
      /dc-a: Pod orders\/mysql-0: hook check failed: .*exit status 3.*; stderr: replica lagging/,
    );
  });

  it('says "not yet" when no Ready pod matches', async () => {
    await expect(
      hooks.runExecHook(ctx, execHook(['true'], { 'app.kubernetes.io/name': 'nothing' }), 'orders', 30_000),
    ).rejects.toMatchObject({ type: 'NotYet' });
  });
});
