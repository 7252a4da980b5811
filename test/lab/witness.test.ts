/**
 * The witness on the lab's real Redis: the fencing epoch advances atomically (exactly one of many
 * racing writers wins), stale epochs are refused, locks admit one operation per application.
 */
import { Redis } from 'ioredis';
import { sleep } from '../../common/wait.ts';
import { LockHeldError, StaleEpochError, Witness } from '../../witness/witness.ts';
import { status, uniqueName } from './helpers.ts';

let redis: Redis;
let witness: Witness;

beforeAll(async () => {
  redis = new Redis((await status()).redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  witness = new Witness(redis, { prefix: uniqueName('pivot-test') });
});

afterAll(async () => {
  await redis.quit();
});

describe('witness', () => {
  it('starts at epoch 0 with no active site', async () => {
    expect(await witness.state('fresh')).toEqual({ app: 'fresh', epoch: 0, fencedSites: [] });
  });

  it('advances the epoch with the active site and fences, and audits every change', async () => {
    const app = uniqueName('app');
    expect(
      await witness.advanceEpoch(app, {
        expectEpoch: 0,
        activeSite: 'dc-a',
        actor: 'test',
        reason: 'initial',
      }),
    ).toBe(1);
    expect(
      await witness.advanceEpoch(app, {
        expectEpoch: 1,
        activeSite: 'dc-b',
        fence: 'dc-a',
        actor: 'alice',
        reason: 'failover',
      }),
    ).toBe(2);
    expect(await witness.state(app)).toEqual({ app, epoch: 2, activeSite: 'dc-b', fencedSites: ['dc-a'] });
    expect(
      await witness.advanceEpoch(app, {
        expectEpoch: 2,
        unfence: 'dc-a',
        actor: 'alice',
        reason: 'reprotect',
      }),
    ).toBe(3);
    expect((await witness.state(app)).fencedSites).toEqual([]);
    const trail = await witness.auditTrail(app);
    expect(trail.map((e) => [e.epoch, e.actor, e.detail])).toEqual([
      [1, 'test', 'active site → dc-a: initial'],
      [2, 'alice', 'active site → dc-b, fenced dc-a: failover'],
      [3, 'alice', 'unfenced dc-a: reprotect'],
    ]);
  });

  it('refuses a stale epoch, and changes nothing', async () => {
    const app = uniqueName('app');
    await witness.advanceEpoch(app, { expectEpoch: 0, activeSite: 'dc-a', actor: 't', reason: 'r' });
    await expect(
      witness.advanceEpoch(app, { expectEpoch: 0, activeSite: 'dc-b', actor: 't', reason: 'late' }),
    ).rejects.toThrow(StaleEpochError);
    await expect(witness.checkEpoch(app, 0)).rejects.toMatchObject({ held: 0, current: 1 });
    await expect(witness.checkEpoch(app, 1)).resolves.toBeUndefined();
    expect(await witness.state(app)).toMatchObject({ epoch: 1, activeSite: 'dc-a' });
  });

  it('lets exactly one of many racing writers advance from the same epoch', async () => {
    const app = uniqueName('app');
    const racers = ['dc-a', 'dc-b'].flatMap((site) => Array.from({ length: 10 }, () => site));
    const results = await Promise.allSettled(
      racers.map((site) =>
        witness.advanceEpoch(app, { expectEpoch: 0, activeSite: site, actor: 'racer', reason: 'race' }),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(
      results.filter((r) => r.status === 'rejected').every((r) => r.reason instanceof StaleEpochError),
    ).toBe(true);
    expect((await witness.state(app)).epoch).toBe(1);
  });

  it('admits one operation per application; the holder renews, others are told who holds it', async () => {
    const app = uniqueName('app');
    await witness.acquireLock(app, 'switchover-1', 5_000);
    await witness.acquireLock(app, 'switchover-1', 5_000);
    await expect(witness.acquireLock(app, 'failover-2', 5_000)).rejects.toMatchObject({
      holder: 'switchover-1',
    });
    await expect(witness.acquireLock(app, 'failover-2', 5_000)).rejects.toThrow(LockHeldError);
    expect(await witness.releaseLock(app, 'failover-2')).toBe(false);
    expect(await witness.lockHolder(app)).toBe('switchover-1');
    expect(await witness.releaseLock(app, 'switchover-1')).toBe(true);
    await witness.acquireLock(app, 'failover-2', 5_000);
    expect(await witness.lockHolder(app)).toBe('failover-2');
  });

  it('frees a lock whose holder died, once its time-to-live runs out', async () => {
    const app = uniqueName('app');
    await witness.acquireLock(app, 'crashed-op', 300);
    await sleep(600);
    await witness.acquireLock(app, 'next-op', 5_000);
    expect(await witness.lockHolder(app)).toBe('next-op');
  });

  it('hands a lock over only from the holder named, so that two takers cannot both win', async () => {
    const app = uniqueName('app');
    await witness.acquireLock(app, 'terminated-op', 5_000);
    expect(await witness.takeOverLock(app, 'someone-else', 'next-op', 5_000)).toBe(false);
    expect(await witness.lockHolder(app)).toBe('terminated-op');
    expect(await witness.takeOverLock(app, 'terminated-op', 'next-op', 5_000)).toBe(true);
    expect(await witness.takeOverLock(app, 'terminated-op', 'third-op', 5_000)).toBe(false);
    expect(await witness.lockHolder(app)).toBe('next-op');
  });
});
