/**
 * The storage array the lab pretends to have: replicated volume pairs, their data plane and the
 * network fences. Pure and clock-free (every call takes `now`), so it is unit-tested without any
 * cluster and persisted as plain JSON. The controller (controller.ts) feeds it what it sees in the
 * two sites' Kubernetes APIs and writes the outcome back as object statuses.
 *
 * Data plane: each copy of a volume has a write sequence `seq` within a `lineage`. A write is
 * accepted only on a primary copy whose site is up and not fenced. Promoting a copy starts a new
 * lineage forked from its current point, so "is copy X's history a prefix of copy Y's" is exact,
 * and data loss and divergence are counted in writes, not guessed from clocks.
 */

export type Role = 'primary' | 'secondary';

export interface VolumeCopy {
  site: string;
  role: Role;
  seq: number;
  lineage: number;
  acceptedWrites: number;
  refusedWrites: number;
  /** Its history is not a prefix of the primary's: it must be resynced before it replicates again. */
  needsResync: boolean;
  resyncRequested: boolean;
  /** Set while a (delayed) promotion is under way. */
  promotionStartedAt?: number;
  lastWriteAt?: number;
}

export interface Lineage {
  parent?: number;
  /** The parent's seq at which this lineage forked off. */
  forkSeq: number;
}

export interface SyncRecord {
  /** When the snapshot that was shipped was taken (csi-addons' lastSyncTime). */
  startedAt: number;
  durationMs: number;
  bytes: number;
}

export interface Volume {
  handle: string;
  capacityBytes: number;
  /** false for clones and snapshots' restores: local volumes with no peer. */
  replicated: boolean;
  copies: Record<string, VolumeCopy>;
  lineages: Record<string, Lineage>;
  lastSync?: SyncRecord;
  /** A sync in flight: the primary's point at startedAt, delivered at startedAt + duration. */
  inFlight?: {
    from: string;
    to: string;
    seq: number;
    lineage: number;
    startedAt: number;
    durationMs: number;
  };
  splitBrain: { periods: number; firstAt?: number; lastAt?: number };
  /** Split-brain periods acknowledged after a repair (the record kept, the alarm cleared). */
  splitBrainAcknowledged?: number;
  origin: { site: string; namespace?: string; claim?: string };
}

export interface Snapshot {
  handle: string;
  site: string;
  volume: string;
  seq: number;
  lineage: number;
  createdAt: number;
  sizeBytes: number;
}

export interface Fence {
  cidrs: string[];
  fenced: boolean;
}

export interface Faults {
  promotionDelayMs: number;
  /** How long the array takes to apply a NetworkFence change (its API is slow, as arrays' are). */
  fenceDelayMs?: number;
  failNextPromotions: number;
  /** Only promotions on this site fail (empty: any site). */
  failPromotionsOnSite: string;
  linkDown: boolean;
  /**
   * Sites cut off from everyone else: their API (and Pivot's worker there) cannot be reached and
   * their replication link is down, but their own clients keep writing to their copies until a
   * fence cuts them off. (A site that is merely down writes nothing.)
   */
  partitioned?: string[];
  /**
   * How far each site's array clock is off (ms, + ahead): it stamps the syncs it reports
   * (lastSyncTime) with its own clock. Real arrays' clocks drift; Pivot must not be fooled by one.
   */
  clockSkewMs?: Record<string, number>;
}

export interface Timing {
  replicationIntervalMs: number;
  /** How long shipping one snapshot takes: the replica is at least this far behind. */
  syncDurationMs: number;
}

export interface SimState {
  version: 1;
  sites: Record<string, { clientCidrs: string[]; up: boolean }>;
  volumes: Record<string, Volume>;
  snapshots: Record<string, Snapshot>;
  /** Keyed by "<cluster site>/<NetworkFence name>". */
  fences: Record<string, Fence>;
  faults: Faults;
  timing: Timing;
  nextLineage: number;
}

export type PromoteResult =
  { outcome: 'promoted' } | { outcome: 'pending'; reason: string } | { outcome: 'refused'; reason: string };

const BYTES_PER_WRITE = 4096;

export function emptyState(sites: Record<string, string[]>, timing: Timing): SimState {
  return {
    version: 1,
    sites: Object.fromEntries(
      Object.entries(sites).map(([name, cidrs]) => [name, { clientCidrs: cidrs, up: true }]),
    ),
    volumes: {},
    snapshots: {},
    fences: {},
    faults: { promotionDelayMs: 0, failNextPromotions: 0, failPromotionsOnSite: '', linkDown: false },
    timing,
    nextLineage: 1,
  };
}

function newCopy(site: string, role: Role, seq: number, lineage: number): VolumeCopy {
  return {
    site,
    role,
    seq,
    lineage,
    acceptedWrites: 0,
    refusedWrites: 0,
    needsResync: false,
    resyncRequested: false,
  };
}

function newLineage(state: SimState, parent: number | undefined, forkSeq: number, vol: Volume): number {
  const id = state.nextLineage++;
  vol.lineages[String(id)] = parent === undefined ? { forkSeq } : { parent, forkSeq };
  return id;
}

/** Adds a volume whose copies all start at `seq` in one new lineage. Idempotent by handle. */
function addVolume(
  state: SimState,
  handle: string,
  spec: { capacityBytes: number; replicated: boolean; seq: number; copies: Array<[string, Role]> },
  origin: Volume['origin'],
): Volume {
  const existing = state.volumes[handle];
  if (existing) return existing;
  const vol: Volume = {
    handle,
    capacityBytes: spec.capacityBytes,
    replicated: spec.replicated,
    copies: {},
    lineages: {},
    splitBrain: { periods: 0 },
    origin,
  };
  const lineage = newLineage(state, undefined, spec.seq, vol);
  for (const [site, role] of spec.copies) vol.copies[site] = newCopy(site, role, spec.seq, lineage);
  state.volumes[handle] = vol;
  return vol;
}

/** Creates a replicated volume: primary on `site`, secondary replica on every other site. Idempotent. */
export function provisionVolume(
  state: SimState,
  handle: string,
  site: string,
  capacityBytes: number,
  origin: Volume['origin'],
): Volume {
  const copies = Object.keys(state.sites).map((name): [string, Role] => [
    name,
    name === site ? 'primary' : 'secondary',
  ]);
  return addVolume(state, handle, { capacityBytes, replicated: true, seq: 0, copies }, origin);
}

/** A local, unreplicated volume holding the data of a snapshot or of another volume's copy. */
export function cloneVolume(
  state: SimState,
  handle: string,
  site: string,
  source: { seq: number; lineage: number; capacityBytes: number },
  origin: Volume['origin'],
): Volume {
  return addVolume(
    state,
    handle,
    { capacityBytes: source.capacityBytes, replicated: false, seq: source.seq, copies: [[site, 'primary']] },
    origin,
  );
}

export function takeSnapshot(
  state: SimState,
  handle: string,
  volumeHandle: string,
  site: string,
  now: number,
): Snapshot | undefined {
  const existing = state.snapshots[handle];
  if (existing) return existing;
  const copy = state.volumes[volumeHandle]?.copies[site];
  const vol = state.volumes[volumeHandle];
  if (!copy || !vol) return undefined;
  const snap: Snapshot = {
    handle,
    site,
    volume: volumeHandle,
    seq: copy.seq,
    lineage: copy.lineage,
    createdAt: now,
    sizeBytes: vol.capacityBytes,
  };
  state.snapshots[handle] = snap;
  return snap;
}

/** Removes one site's copy (a Delete reclaim policy at work); the volume goes with its last copy. */
export function deleteCopy(state: SimState, handle: string, site: string): void {
  const vol = state.volumes[handle];
  if (!vol) return;
  delete vol.copies[site];
  if (Object.keys(vol.copies).length === 0) delete state.volumes[handle];
}

function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** Parses "a.b.c.d/len" (or a bare address) into an inclusive [first, last] range. */
export function parseCidr(cidr: string): [number, number] | undefined {
  const [ip, lenText] = cidr.trim().split('/');
  const base = ipv4ToInt(ip ?? '');
  const len = lenText === undefined ? 32 : Number(lenText);
  if (base === undefined || !Number.isInteger(len) || len < 0 || len > 32) return undefined;
  const size = 2 ** (32 - len);
  const first = base - (base % size);
  return [first, first + size - 1];
}

function overlaps(a: string, b: string): boolean {
  const ra = parseCidr(a);
  const rb = parseCidr(b);
  return !!ra && !!rb && ra[0] <= rb[1] && rb[0] <= ra[1];
}

export function isSiteFenced(state: SimState, site: string): boolean {
  const cidrs = state.sites[site]?.clientCidrs ?? [];
  return Object.values(state.fences).some(
    (f) => f.fenced && f.cidrs.some((c) => cidrs.some((s) => overlaps(c, s))),
  );
}

export function setFence(state: SimState, key: string, fence: Fence): { ok: boolean; message: string } {
  const bad = fence.cidrs.filter((c) => !parseCidr(c));
  if (bad.length > 0 || fence.cidrs.length === 0) {
    return { ok: false, message: bad.length ? `invalid CIDR(s): ${bad.join(', ')}` : 'no CIDR to fence' };
  }
  state.fences[key] = { cidrs: [...fence.cidrs], fenced: fence.fenced };
  return {
    ok: true,
    message: fence.fenced ? `fenced ${fence.cidrs.join(', ')}` : `unfenced ${fence.cidrs.join(', ')}`,
  };
}

export function removeFence(state: SimState, key: string): void {
  delete state.fences[key];
}

function peersOf(vol: Volume, site: string): VolumeCopy[] {
  return Object.values(vol.copies).filter((c) => c.site !== site);
}

export function isPartitioned(state: SimState, site: string): boolean {
  return (state.faults.partitioned ?? []).includes(site);
}

function reachable(state: SimState, site: string): boolean {
  return !state.faults.linkDown && (state.sites[site]?.up ?? false) && !isPartitioned(state, site);
}

/**
 * The highest seq of `of`'s history that lies in lineage `lineage`, or -1 when that lineage is not
 * an ancestor of (or equal to) `of`'s.
 */
function reachInLineage(vol: Volume, of: { seq: number; lineage: number }, lineage: number): number {
  let current: number | undefined = of.lineage;
  let limit = of.seq;
  while (current !== undefined) {
    if (current === lineage) return limit;
    const l: Lineage | undefined = vol.lineages[String(current)];
    if (!l) return -1;
    limit = Math.min(limit, l.forkSeq);
    current = l.parent;
  }
  return -1;
}

/** Writes on `copy` that `other` does not have (0 when copy's history is a prefix of other's). */
export function writesMissingFrom(vol: Volume, copy: VolumeCopy, other: VolumeCopy): number {
  const reach = reachInLineage(vol, other, copy.lineage);
  if (reach >= copy.seq) return 0;
  if (reach >= 0) return copy.seq - reach;
  // Different roots: everything past the common fork point of the two lineage chains.
  let common = 0;
  let current: number | undefined = copy.lineage;
  let limit = copy.seq;
  while (current !== undefined) {
    const r = reachInLineage(vol, other, current);
    if (r >= 0) {
      common = Math.min(limit, r);
      break;
    }
    const l: Lineage | undefined = vol.lineages[String(current)];
    if (!l) break;
    limit = Math.min(limit, l.forkSeq);
    current = l.parent;
  }
  return copy.seq - common;
}

/**
 * Promotes one site's copy. Like a real array it refuses, unless forced, while a peer copy is an
 * unfenced primary, or while the peer cannot be reached to confirm it is not. Injected faults
 * (failNextPromotions, promotionDelayMs) apply to forced promotions too.
 */
export function promote(
  state: SimState,
  handle: string,
  site: string,
  force: boolean,
  now: number,
): PromoteResult {
  const vol = state.volumes[handle];
  const copy = vol?.copies[site];
  if (!vol || !copy) return { outcome: 'refused', reason: `volume ${handle} has no copy on ${site}` };
  if (copy.role === 'primary') return { outcome: 'promoted' };
  if (!force) {
    for (const peer of peersOf(vol, site)) {
      if (!reachable(state, peer.site)) {
        return {
          outcome: 'refused',
          reason: `peer copy on ${peer.site} cannot be reached (${state.faults.linkDown ? 'replication link down' : 'site down'}); only a forced promotion may proceed`,
        };
      }
      if (peer.role === 'primary' && !isSiteFenced(state, peer.site)) {
        return {
          outcome: 'refused',
          reason: `peer copy on ${peer.site} is an unfenced primary; demote or fence it first`,
        };
      }
    }
  }
  if (copy.promotionStartedAt === undefined) {
    const targeted = !state.faults.failPromotionsOnSite || state.faults.failPromotionsOnSite === site;
    if (state.faults.failNextPromotions > 0 && targeted) {
      state.faults.failNextPromotions -= 1;
      return { outcome: 'refused', reason: 'injected fault: promotion failed' };
    }
    copy.promotionStartedAt = now;
  }
  if (now - copy.promotionStartedAt < state.faults.promotionDelayMs) {
    return {
      outcome: 'pending',
      reason: `promotion in progress (injected delay ${state.faults.promotionDelayMs} ms)`,
    };
  }
  delete copy.promotionStartedAt;
  copy.lineage = newLineage(state, copy.lineage, copy.seq, vol);
  copy.role = 'primary';
  copy.needsResync = false;
  copy.resyncRequested = false;
  // A sync in flight towards this copy can no longer land: it is the source now.
  if (vol.inFlight?.to === site) delete vol.inFlight;
  return { outcome: 'promoted' };
}

/** Demotes a copy to secondary: always possible locally. Idempotent. */
export function demote(state: SimState, handle: string, site: string): boolean {
  const copy = state.volumes[handle]?.copies[site];
  if (!copy) return false;
  copy.role = 'secondary';
  delete copy.promotionStartedAt;
  return true;
}

export function requestResync(state: SimState, handle: string, site: string): boolean {
  const copy = state.volumes[handle]?.copies[site];
  if (!copy) return false;
  demote(state, handle, site);
  copy.resyncRequested = true;
  return true;
}

/**
 * One data-plane period: `inUse` lists the (site, volume) pairs a Running pod writes to. A write
 * lands only on an up, unfenced primary; otherwise it is refused and counted. Both copies of a pair
 * accepting writes in the same period is split brain.
 */
export function applyWrites(
  state: SimState,
  inUse: Array<{ site: string; handle: string }>,
  now: number,
): void {
  const accepted = new Map<string, Set<string>>();
  for (const { site, handle } of inUse) {
    const copy = state.volumes[handle]?.copies[site];
    if (!copy) continue;
    const ok = copy.role === 'primary' && (state.sites[site]?.up ?? false) && !isSiteFenced(state, site);
    if (!ok) {
      copy.refusedWrites += 1;
      continue;
    }
    copy.seq += 1;
    copy.acceptedWrites += 1;
    copy.lastWriteAt = now;
    const sites = accepted.get(handle) ?? new Set<string>();
    sites.add(site);
    accepted.set(handle, sites);
  }
  for (const [handle, sites] of accepted) {
    const vol = state.volumes[handle];
    if (!vol || sites.size < 2) continue;
    vol.splitBrain.periods += 1;
    vol.splitBrain.firstAt ??= now;
    vol.splitBrain.lastAt = now;
  }
}

/**
 * Replication: delivers syncs whose time has come and starts new ones every replication interval,
 * from the single primary to each reachable secondary. A secondary whose history is not a prefix of
 * the primary's is marked for resync instead; a requested resync overwrites it.
 */
export function replicate(state: SimState, now: number): void {
  const { replicationIntervalMs, syncDurationMs } = state.timing;
  for (const vol of Object.values(state.volumes)) {
    if (!vol.replicated) continue;
    const flight = vol.inFlight;
    if (flight && now >= flight.startedAt + flight.durationMs) {
      delete vol.inFlight;
      const target = vol.copies[flight.to];
      if (
        target &&
        target.role === 'secondary' &&
        reachable(state, flight.to) &&
        reachable(state, flight.from)
      ) {
        target.seq = flight.seq;
        target.lineage = flight.lineage;
        target.needsResync = false;
        target.resyncRequested = false;
        vol.lastSync = {
          startedAt: flight.startedAt,
          durationMs: flight.durationMs,
          bytes: flight.seq * BYTES_PER_WRITE,
        };
      }
    }
    if (vol.inFlight) continue;
    const source = syncSource(vol);
    if (!source || !reachable(state, source.site)) continue;
    const due = !vol.lastSync || now - vol.lastSync.startedAt >= replicationIntervalMs;
    for (const target of peersOf(vol, source.site)) {
      if (target.role !== 'secondary' || !reachable(state, target.site)) continue;
      const diverged = writesMissingFrom(vol, target, source) > 0;
      if (diverged && !target.resyncRequested) {
        target.needsResync = true;
        continue;
      }
      if (!due && !target.resyncRequested) continue;
      vol.inFlight = {
        from: source.site,
        to: target.site,
        seq: source.seq,
        lineage: source.lineage,
        startedAt: now,
        durationMs: syncDurationMs,
      };
      break;
    }
  }
}

/**
 * Where replication flows from: the single primary; or, when no copy is primary (a planned
 * switchover between demotion and promotion), the demoted copy whose history contains the others'
 * (the most recently written one when they are equal), so that the final writes still reach the
 * replica and syncs keep being reported on schedule, as a real array's snapshots are.
 */
function syncSource(vol: Volume): VolumeCopy | undefined {
  const copies = Object.values(vol.copies);
  const primaries = copies.filter((c) => c.role === 'primary');
  if (primaries.length === 1) return primaries[0];
  if (primaries.length > 1) return undefined;
  return copies
    .filter((c) => copies.every((o) => o === c || writesMissingFrom(vol, o, c) === 0))
    .sort((a, b) => (b.lastWriteAt ?? -1) - (a.lastWriteAt ?? -1))[0];
}

/** The copy that holds the authoritative data: the primary, or the most recently promoted one if several claim it. */
export function currentPrimary(vol: Volume): VolumeCopy | undefined {
  return Object.values(vol.copies)
    .filter((c) => c.role === 'primary')
    .sort((a, b) => b.lineage - a.lineage)[0];
}

export interface CopyReport {
  site: string;
  role: Role;
  fenced: boolean;
  siteUp: boolean;
  seq: number;
  lineage: number;
  acceptedWrites: number;
  refusedWrites: number;
  needsResync: boolean;
  resyncing: boolean;
  /** Writes on this copy that the current primary does not have: data lost if this copy is dropped. */
  writesNotOnPrimary: number;
  /** When this copy last accepted a write. */
  lastWriteAt?: string;
}

export interface VolumeReport {
  handle: string;
  replicated: boolean;
  origin: Volume['origin'];
  copies: CopyReport[];
  /** The site of the authoritative copy (the most recently promoted primary). */
  primarySite?: string;
  /** ms since the snapshot of the last completed sync was taken; undefined before the first sync. */
  lagMs?: number;
  lastSyncTime?: string;
  lastSyncDurationMs?: number;
  /** More than one copy is primary (e.g. a forced promotion while the old primary was cut off). */
  multiplePrimaries: boolean;
  splitBrain: boolean;
  splitBrainPeriods: number;
  splitBrainAcknowledged: number;
}

export function volumeReport(state: SimState, vol: Volume, now: number): VolumeReport {
  const primary = currentPrimary(vol);
  return {
    handle: vol.handle,
    replicated: vol.replicated,
    origin: vol.origin,
    copies: Object.values(vol.copies).map((c) => ({
      site: c.site,
      role: c.role,
      fenced: isSiteFenced(state, c.site),
      siteUp: state.sites[c.site]?.up ?? false,
      seq: c.seq,
      lineage: c.lineage,
      acceptedWrites: c.acceptedWrites,
      refusedWrites: c.refusedWrites,
      needsResync: c.needsResync,
      resyncing: c.resyncRequested,
      writesNotOnPrimary: primary && primary !== c ? writesMissingFrom(vol, c, primary) : 0,
      ...(c.lastWriteAt !== undefined ? { lastWriteAt: new Date(c.lastWriteAt).toISOString() } : {}),
    })),
    ...(primary ? { primarySite: primary.site } : {}),
    ...(vol.lastSync
      ? {
          lagMs: now - vol.lastSync.startedAt,
          lastSyncTime: new Date(vol.lastSync.startedAt).toISOString(),
          lastSyncDurationMs: vol.lastSync.durationMs,
        }
      : {}),
    multiplePrimaries: Object.values(vol.copies).filter((c) => c.role === 'primary').length > 1,
    splitBrain: vol.splitBrain.periods > 0,
    splitBrainPeriods: vol.splitBrain.periods,
    splitBrainAcknowledged: vol.splitBrainAcknowledged ?? 0,
  };
}
