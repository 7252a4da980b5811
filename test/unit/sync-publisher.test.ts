/**
 * The simulated array publishes newer syncs in the background, the stalest first: a volume whose
 * shown lastSyncTime is oldest is refreshed first, a newer offer replaces an unwritten one, and a
 * full status write (a change of role) cancels what was pending for that object.
 */
import { pino } from 'pino';
import { waitUntil } from '../../common/wait.ts';
import { SyncPublisher, type PendingSync } from '../../lab/storage-sim/sync-publisher.ts';

const log = pino({ level: 'silent' });

function pending(name: string, shownSince: number, at = '2026-12-02T10:00:00Z'): PendingSync {
  return {
    site: 'dc-a',
    namespace: 'shop',
    name,
    sync: { lastSyncTime: at, lastSyncDuration: '0.200s', lastSyncBytes: 4096 },
    shownSince,
  };
}

describe('SyncPublisher', () => {
  it('hands out the stalest first; a newer offer replaces the pending one; forget drops it', () => {
    const p = new SyncPublisher(() => Promise.resolve(), log);
    p.offer(pending('fresh', 3000));
    p.offer(pending('never', 0));
    p.offer(pending('old', 1000, '2026-12-02T10:00:01Z'));
    p.offer(pending('old', 1000, '2026-12-02T10:00:05Z'));
    p.offer(pending('demoted', 500));
    p.forget({ site: 'dc-a', namespace: 'shop', name: 'demoted' });
    expect(p.size).toBe(3);
    const order = [p.next(), p.next(), p.next(), p.next()];
    expect(order.map((x) => x?.name)).toEqual(['never', 'old', 'fresh', undefined]);
    expect(order[1]?.sync.lastSyncTime).toBe('2026-12-02T10:00:05Z');
  });

  it('writes what is offered in the background, and goes on after a failed write', async () => {
    const written: string[] = [];
    const p = new SyncPublisher(
      (x) => {
        if (x.name === 'flaky' && !written.includes('flaky-failed')) {
          written.push('flaky-failed');
          return Promise.reject(new Error('503'));
        }
        written.push(x.name);
        return Promise.resolve();
      },
      log,
      1,
    );
    p.offer(pending('b', 2));
    p.offer(pending('flaky', 1));
    p.offer(pending('c', 3));
    p.start();
    try {
      await waitUntil('three writes', () => written.length === 3, { timeoutMs: 5000, intervalMs: 10 });
      expect(written).toEqual(['flaky-failed', 'b', 'c']);
      p.offer(pending('flaky', 1));
      await waitUntil('the retry, offered again', () => written.includes('flaky'), {
        timeoutMs: 5000,
        intervalMs: 10,
      });
    } finally {
      p.stop();
    }
  });
});
