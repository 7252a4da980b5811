/**
 * Publishes VolumeReplications' newer syncs (`lastSyncTime`, `lastSyncDuration`, `lastSyncBytes`)
 * in the background, the stalest first, a few writes at a time.
 *
 * Why not in the period: at 2 s replication and a thousand volumes per site, publishing every sync
 * would need hundreds of status writes a second, more than a 2-core API server serves, and the
 * period, which also carries promotions, demotions and fences, stretched to half a minute waiting
 * for them. Now the period writes only changes of role and condition, and this publisher refreshes
 * the sync times as fast as the API server answers: at the lab's usual size each sync appears
 * within a period; with thousands of volumes the published `lastSyncTime` lags, as it does on real
 * arrays whose operators refresh it on their own schedule. Its patches carry only the three sync
 * fields, so a late one can never undo a change of role written meanwhile. (A volume between
 * demotion and promotion, whose final sync a planned move waits for, is written in the period.)
 */
import type { Logger } from '../../common/logging.ts';
import { sleep } from '../../common/wait.ts';

export interface PendingSync {
  site: string;
  namespace: string;
  name: string;
  sync: { lastSyncTime: string; lastSyncDuration: string; lastSyncBytes: number };
  /** When the sync the object shows now started (epoch ms; 0: none shown yet). */
  shownSince: number;
}

const keyOf = (p: Pick<PendingSync, 'site' | 'namespace' | 'name'>) => `${p.site}/${p.namespace}/${p.name}`;

export class SyncPublisher {
  private readonly pending = new Map<string, PendingSync>();
  private running = false;

  constructor(
    private readonly write: (p: PendingSync) => Promise<void>,
    private readonly log: Logger,
    private readonly concurrency = 2,
  ) {}

  /** The latest sync to show for one object (replacing one not yet written). */
  offer(p: PendingSync): void {
    this.pending.set(keyOf(p), p);
  }

  /** Its whole status was just written: nothing of it is pending any more. */
  forget(p: Pick<PendingSync, 'site' | 'namespace' | 'name'>): void {
    this.pending.delete(keyOf(p));
  }

  get size(): number {
    return this.pending.size;
  }

  /** Takes the pending sync whose object shows the oldest one. */
  next(): PendingSync | undefined {
    let stalest: PendingSync | undefined;
    for (const p of this.pending.values()) if (!stalest || p.shownSince < stalest.shownSince) stalest = p;
    if (stalest) this.pending.delete(keyOf(stalest));
    return stalest;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (let i = 0; i < this.concurrency; i++) void this.loop();
  }

  stop(): void {
    this.running = false;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const p = this.next();
      if (!p) {
        await sleep(100);
        continue;
      }
      try {
        await this.write(p);
      } catch (err) {
        // The next period offers it again if the object still shows an older sync.
        this.log.debug({ vr: keyOf(p), err: String(err) }, 'sync status not written');
      }
    }
  }
}
