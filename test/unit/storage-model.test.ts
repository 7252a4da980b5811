/**
 * The simulated array's rules, without any cluster: what a DR test relies on when it reads the
 * simulator's figures (write sequences, divergence, split brain, refusals).
 */
import {
  applyWrites,
  demote,
  emptyState,
  parseCidr,
  promote,
  provisionVolume,
  replicate,
  requestResync,
  setFence,
  takeSnapshot,
  cloneVolume,
  deleteCopy,
  volumeReport,
  type SimState,
} from '../../lab/storage-sim/model.ts';

const A = 'dc-a';
const B = 'dc-b';
const H = 'vol-1';

function lab(): SimState {
  const state = emptyState(
    { [A]: ['10.10.0.0/16'], [B]: ['10.20.0.0/16'] },
    { replicationIntervalMs: 1000, syncDurationMs: 100 },
  );
  provisionVolume(state, H, A, 1 << 30, { site: A, namespace: 'orders', claim: 'data' });
  return state;
}

/** Runs periods of `ms` from `from` to `to`, writing from the given sites each period. */
function run(state: SimState, from: number, to: number, writers: string[], ms = 100): void {
  for (let t = from; t < to; t += ms) {
    applyWrites(
      state,
      writers.map((site) => ({ site, handle: H })),
      t,
    );
    replicate(state, t);
  }
}

const copy = (state: SimState, site: string) => state.volumes[H]!.copies[site]!;

describe('provisioning', () => {
  it('creates a primary on the origin site and a secondary replica on the peer', () => {
    const state = lab();
    expect(copy(state, A).role).toBe('primary');
    expect(copy(state, B).role).toBe('secondary');
    expect(provisionVolume(state, H, B, 1, { site: B })).toBe(state.volumes[H]); // idempotent
  });
});

describe('data plane', () => {
  it('accepts writes only on the primary and counts refused ones', () => {
    const state = lab();
    applyWrites(
      state,
      [
        { site: A, handle: H },
        { site: B, handle: H },
      ],
      0,
    );
    expect(copy(state, A)).toMatchObject({ seq: 1, acceptedWrites: 1, refusedWrites: 0 });
    expect(copy(state, B)).toMatchObject({ seq: 0, acceptedWrites: 0, refusedWrites: 1 });
  });

  it('refuses writes from a fenced site and accepts them again once unfenced', () => {
    const state = lab();
    expect(setFence(state, `${B}/fence-a`, { cidrs: ['10.10.0.0/16'], fenced: true }).ok).toBe(true);
    applyWrites(state, [{ site: A, handle: H }], 0);
    expect(copy(state, A)).toMatchObject({ seq: 0, refusedWrites: 1 });
    setFence(state, `${B}/fence-a`, { cidrs: ['10.10.0.0/16'], fenced: false });
    applyWrites(state, [{ site: A, handle: H }], 1);
    expect(copy(state, A).seq).toBe(1);
  });

  it('rejects a fence with an invalid CIDR and changes nothing', () => {
    const state = lab();
    const r = setFence(state, `${B}/bad`, { cidrs: ['10.10.0.0/33'], fenced: true });
    expect(r.ok).toBe(false);
    expect(r.message).toContain('10.10.0.0/33');
    expect(state.fences).toEqual({});
  });

  it('refuses writes while the site is down', () => {
    const state = lab();
    state.sites[A]!.up = false;
    applyWrites(state, [{ site: A, handle: H }], 0);
    expect(copy(state, A)).toMatchObject({ seq: 0, refusedWrites: 1 });
  });
});

describe('replication', () => {
  it('ships the primary point on the interval, delivered after the sync duration', () => {
    const state = lab();
    run(state, 0, 1000, [A]); // writes at 0..900: sync started at 0 carried seq 1
    expect(copy(state, A).seq).toBe(10);
    expect(copy(state, B).seq).toBe(1);
    run(state, 1000, 1200, [A]); // sync started at 1000 (seq 11) lands at 1100
    expect(copy(state, B).seq).toBe(11);
    expect(volumeReport(state, state.volumes[H]!, 1200).lagMs).toBe(200);
  });

  it('stops while the link is down, so lag grows, and catches up when it returns', () => {
    const state = lab();
    run(state, 0, 200, [A]);
    state.faults.linkDown = true;
    run(state, 200, 5000, [A]);
    const during = volumeReport(state, state.volumes[H]!, 5000);
    expect(during.lagMs).toBeGreaterThanOrEqual(5000);
    expect(copy(state, B).seq).toBeLessThan(copy(state, A).seq);
    state.faults.linkDown = false;
    run(state, 5000, 5200, []);
    expect(copy(state, B).seq).toBe(copy(state, A).seq);
  });
});

describe('partition', () => {
  it('a partitioned site goes on writing, unreplicated, until a fence on its networks stops it', () => {
    const state = lab();
    run(state, 0, 200, [A]);
    state.faults.partitioned = [A];
    run(state, 200, 3000, [A]);
    expect(copy(state, A).acceptedWrites).toBeGreaterThan(20);
    // Cut off: nothing reaches the replica after the partition, and it cannot be promoted unforced.
    expect(state.volumes[H]!.lastSync!.startedAt).toBeLessThan(200);
    expect(promote(state, H, B, false, 3000)).toMatchObject({
      outcome: 'refused',
      reason: expect.stringContaining('cannot be reached') as string,
    });
    setFence(state, 'dc-b/pivot-fence-dc-a', { cidrs: ['10.10.0.0/16'], fenced: true });
    const fencedAt = copy(state, A).acceptedWrites;
    run(state, 3000, 4000, [A]);
    expect(copy(state, A).acceptedWrites).toBe(fencedAt);
  });
});

describe('promotion', () => {
  it('refuses a promotion while the peer is an unfenced primary it can reach', () => {
    const state = lab();
    const r = promote(state, H, B, false, 0);
    expect(r).toMatchObject({ outcome: 'refused' });
    expect(copy(state, B).role).toBe('secondary');
  });

  it('refuses an unforced promotion when the peer cannot be reached', () => {
    const state = lab();
    state.sites[A]!.up = false;
    const refused = promote(state, H, B, false, 0);
    expect(refused.outcome).toBe('refused');
    expect(refused.outcome === 'refused' && refused.reason).toContain('forced promotion');
    expect(promote(state, H, B, true, 0)).toEqual({ outcome: 'promoted' });
    expect(copy(state, B).role).toBe('primary');
  });

  it('planned switchover: demote, final sync, promote loses nothing and needs no resync', () => {
    const state = lab();
    run(state, 0, 1000, [A]);
    demote(state, H, A);
    run(state, 1000, 1200, []); // quiesced: the next sync carries the last write
    expect(copy(state, B).seq).toBe(copy(state, A).seq);
    expect(promote(state, H, B, false, 1200)).toEqual({ outcome: 'promoted' });
    run(state, 1200, 2400, [B]);
    const report = volumeReport(state, state.volumes[H]!, 2400);
    expect(report.primarySite).toBe(B);
    expect(report.copies.find((c) => c.site === A)).toMatchObject({
      writesNotOnPrimary: 0,
      needsResync: false,
    });
    expect(copy(state, A).seq).toBeGreaterThan(10); // replication reversed: A follows B
    expect(report.splitBrain).toBe(false);
  });

  it('keeps reporting syncs on schedule after a demotion when the replica is already caught up', () => {
    const state = lab();
    run(state, 0, 1000, [A]);
    run(state, 1000, 2200, []); // quiesced: the replica has everything
    demote(state, H, A);
    const before = state.volumes[H]!.lastSync!.startedAt;
    run(state, 2200, 4400, []);
    expect(state.volumes[H]!.lastSync!.startedAt).toBeGreaterThan(before);
    expect(copy(state, B).seq).toBe(copy(state, A).seq);
  });

  it('unplanned failover: the lost writes are exactly those the replica never received', () => {
    const state = lab();
    run(state, 0, 1550, [A]); // last delivered sync was started at 1000
    const shipped = copy(state, B).seq;
    const written = copy(state, A).seq;
    state.sites[A]!.up = false;
    expect(promote(state, H, B, true, 1550)).toEqual({ outcome: 'promoted' });
    state.sites[A]!.up = true;
    setFence(state, `${B}/fence-a`, { cidrs: ['10.10.0.0/16'], fenced: true });
    run(state, 1550, 3000, [A, B]); // the returning old primary is fenced: no split brain
    const report = volumeReport(state, state.volumes[H]!, 3000);
    expect(report.copies.find((c) => c.site === A)!.writesNotOnPrimary).toBe(written - shipped);
    expect(report.splitBrain).toBe(false);
    expect(copy(state, A).refusedWrites).toBeGreaterThan(0);
  });

  it('flags split brain when both copies accept writes in the same period', () => {
    const state = lab();
    state.sites[A]!.up = false;
    promote(state, H, B, true, 0);
    state.sites[A]!.up = true; // back, unfenced, still primary: two writers
    run(state, 0, 300, [A, B]);
    const report = volumeReport(state, state.volumes[H]!, 300);
    expect(report.splitBrain).toBe(true);
    expect(report.splitBrainPeriods).toBe(3);
  });

  it('a diverged old primary needs a resync, after which it follows the new primary', () => {
    const state = lab();
    run(state, 0, 500, [A]);
    state.sites[A]!.up = false;
    promote(state, H, B, true, 500);
    state.sites[A]!.up = true;
    demote(state, H, A);
    run(state, 500, 2000, [B]);
    expect(copy(state, A).needsResync).toBe(true);
    requestResync(state, H, A);
    run(state, 2000, 2200, [B]);
    expect(copy(state, A)).toMatchObject({ needsResync: false, resyncRequested: false });
    expect(
      volumeReport(state, state.volumes[H]!, 2200).copies.find((c) => c.site === A)!.writesNotOnPrimary,
    ).toBe(0);
  });

  it('injected faults: the next N promotions fail, then a delay applies', () => {
    const state = lab();
    demote(state, H, A);
    state.faults.failNextPromotions = 2;
    expect(promote(state, H, B, false, 0).outcome).toBe('refused');
    expect(promote(state, H, B, false, 1).outcome).toBe('refused');
    state.faults.promotionDelayMs = 1000;
    expect(promote(state, H, B, false, 2).outcome).toBe('pending');
    expect(promote(state, H, B, false, 500).outcome).toBe('pending');
    expect(promote(state, H, B, false, 1002).outcome).toBe('promoted');
  });
});

describe('snapshots, clones and deletion', () => {
  it('clones carry the snapshot point and are local, unreplicated volumes', () => {
    const state = lab();
    run(state, 0, 1200, [A]);
    const snap = takeSnapshot(state, 'snap-1', H, B, 1200)!;
    expect(snap.seq).toBe(copy(state, B).seq);
    const clone = cloneVolume(
      state,
      'clone-1',
      B,
      { seq: snap.seq, lineage: snap.lineage, capacityBytes: 1 },
      { site: B },
    );
    expect(clone.replicated).toBe(false);
    expect(Object.keys(clone.copies)).toEqual([B]);
    expect(clone.copies[B]).toMatchObject({ role: 'primary', seq: snap.seq });
  });

  it('deleting the last copy deletes the volume', () => {
    const state = lab();
    deleteCopy(state, H, A);
    expect(state.volumes[H]).toBeDefined();
    deleteCopy(state, H, B);
    expect(state.volumes[H]).toBeUndefined();
  });
});

describe('CIDRs', () => {
  it('parses ranges and rejects malformed ones', () => {
    expect(parseCidr('10.10.0.0/16')).toEqual([0x0a0a0000, 0x0a0affff]);
    expect(parseCidr('10.10.3.4')).toEqual([0x0a0a0304, 0x0a0a0304]);
    expect(parseCidr('10.10.0.0/40')).toBeUndefined();
    expect(parseCidr('not-an-ip/8')).toBeUndefined();
  });
});
