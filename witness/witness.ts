/**
 * The witness: per application, the active site and the fencing epoch, operation locks, and an
 * audit trail, in Redis (standalone in the lab, Sentinel across three sites in production).
 *
 * The epoch is the single source of truth for "who may act": it advances atomically (a Lua script,
 * compare-and-set on the epoch the caller last saw) at every change of active site, and every
 * mutating step presents the epoch it holds; a stale one is refused (docs/safety.md,
 * invariant 5). Locks are per application so that one operation runs at a time whoever triggers
 * it (invariant 8).
 */
import type { Redis } from 'ioredis';

export interface AppWitnessState {
  app: string;
  /** 0 until the first recorded change. */
  epoch: number;
  activeSite?: string;
  /** Sites fenced in the witness: they must not act until a reprotect lifts the fence. */
  fencedSites: string[];
}

export interface AuditEntry {
  at: string;
  app: string;
  actor: string;
  action: string;
  detail: string;
  epoch: number;
}

/** A step held an epoch that is no longer current: another change of active site happened. */
export class StaleEpochError extends Error {
  constructor(
    readonly app: string,
    readonly held: number,
    readonly current: number,
  ) {
    super(`${app}: fencing epoch ${held} is stale (current ${current}); the step must not act`);
    this.name = 'StaleEpochError';
  }
}

/**
 * A change reached the witness's master, but not the replicas it must reach within the timeout: a
 * Sentinel failover now could promote a replica without it (an epoch read back lower than one a
 * step already acted on). The change may or may not survive; the step retries, and its retry
 * checks again (docs/safety.md, invariant 5).
 */
export class WitnessNotDurableError extends Error {
  constructor(
    readonly what: string,
    readonly acknowledged: number,
    readonly required: number,
    readonly timeoutMs: number,
  ) {
    super(
      `the witness wrote ${what}, but only ${acknowledged} of ${required} replica(s) acknowledged it within ${timeoutMs} ms: check the witness's Redis replication (INFO replication on the master)`,
    );
    this.name = 'WitnessNotDurableError';
  }
}

/**
 * How many replicas must acknowledge a change of epoch, active site, lock or fence owners before
 * the witness reports it done (Redis WAIT). 0 for a standalone Redis, which has no failover to
 * lose a write to.
 */
export interface WitnessDurability {
  replicas: number;
  timeoutMs: number;
}

export interface WitnessOptions {
  /** Key prefix (tests use their own). */
  prefix?: string;
  durability?: WitnessDurability;
}

/** The application's operation lock is held by another operation. */
export class LockHeldError extends Error {
  constructor(
    readonly app: string,
    readonly holder: string,
  ) {
    super(`${app}: another operation holds the lock (${holder}); attach to it or wait for it to end`);
    this.name = 'LockHeldError';
  }
}

// KEYS[1] state hash; ARGV: expected epoch, new active site ('' = unchanged), site to fence ('' = none),
// site to unfence ('' = none). Returns the new epoch, or {err} with the current one.
const ADVANCE = `
local current = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if current ~= tonumber(ARGV[1]) then
  return {-1, current}
end
local nextEpoch = current + 1
redis.call('HSET', KEYS[1], 'epoch', nextEpoch)
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'activeSite', ARGV[2]) end
local fenced = cjson.decode(redis.call('HGET', KEYS[1], 'fenced') or '[]')
local out = {}
for _, s in ipairs(fenced) do
  if s ~= ARGV[4] and s ~= ARGV[3] then table.insert(out, s) end
end
if ARGV[3] ~= '' then table.insert(out, ARGV[3]) end
redis.call('HSET', KEYS[1], 'fenced', cjson.encode(out))
return {nextEpoch, current}
`;

// KEYS[1] state hash; ARGV: expected epoch, active site. Records the active site without advancing
// the epoch (an unplanned failover advanced it when it fenced the old site). Returns 1, or 0 if stale.
const SET_ACTIVE = `
local current = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'activeSite', ARGV[2])
return 1
`;

// KEYS[1] lock; ARGV: holder, TTL in ms. Takes the lock if free, renews it if this holder has it
// (in one step: a lock that expires between a read and a renewal is never reported as held).
// Returns '' when this holder has it now, or the other holder ('unknown' if it cannot be told).
const ACQUIRE = `
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return '' end
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return ''
end
return current or 'unknown'
`;

// KEYS[1] lock; ARGV[1] the holder to replace; ARGV[2] the new holder; ARGV[3] TTL (ms).
const TAKE_OVER = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`;

// KEYS[1] lock; ARGV[1] holder. Deletes the lock only if this holder has it.
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export class Witness {
  private readonly prefix: string;
  private readonly durability: WitnessDurability;

  constructor(
    private readonly redis: Redis,
    options: WitnessOptions = {},
  ) {
    this.prefix = options.prefix ?? 'pivot';
    this.durability = options.durability ?? { replicas: 0, timeoutMs: 0 };
  }

  /**
   * Returns once `durability.replicas` replicas hold every write this connection made, or throws
   * WitnessNotDurableError. Replication is ordered, so a later write acknowledged means every
   * earlier one is too.
   */
  private async replicated(what: string): Promise<void> {
    const { replicas, timeoutMs } = this.durability;
    if (replicas <= 0) return;
    const acknowledged = await this.redis.wait(replicas, timeoutMs);
    if (acknowledged < replicas) throw new WitnessNotDurableError(what, acknowledged, replicas, timeoutMs);
  }

  /**
   * Confirms that the application's state as read now is held by the replicas: a write to a
   * barrier key, then the same wait. A step that finds its change already made (a retry after
   * WitnessNotDurableError, or after a crash) calls it before it trusts that change.
   */
  async confirmDurable(app: string): Promise<void> {
    if (this.durability.replicas <= 0) return;
    await this.redis.set(`${this.prefix}:durable:{${app}}`, new Date().toISOString());
    await this.replicated(`${app}'s state`);
  }

  private key(app: string, what: 'state' | 'lock' | 'audit' | 'volumes' | 'cooldown'): string {
    return `${this.prefix}:${what}:{${app}}`;
  }

  async state(app: string): Promise<AppWitnessState> {
    const h = await this.redis.hgetall(this.key(app, 'state'));
    const fenced = h['fenced'] ? (JSON.parse(h['fenced']) as unknown) : [];
    return {
      app,
      epoch: Number(h['epoch'] ?? 0),
      ...(h['activeSite'] ? { activeSite: h['activeSite'] } : {}),
      // cjson encodes an empty Lua table as {}: normalise to a list.
      fencedSites: Array.isArray(fenced) ? (fenced as string[]) : [],
    };
  }

  /**
   * Advances the epoch from `expectEpoch`, atomically, optionally recording a new active site and
   * fencing or unfencing a site. Throws StaleEpochError when the epoch moved on meanwhile.
   */
  async advanceEpoch(
    app: string,
    change: {
      expectEpoch: number;
      activeSite?: string;
      fence?: string;
      unfence?: string;
      actor: string;
      reason: string;
    },
  ): Promise<number> {
    const [next, current] = (await this.redis.eval(
      ADVANCE,
      1,
      this.key(app, 'state'),
      String(change.expectEpoch),
      change.activeSite ?? '',
      change.fence ?? '',
      change.unfence ?? '',
    )) as [number, number];
    if (next === -1) throw new StaleEpochError(app, change.expectEpoch, current);
    await this.replicated(`${app}'s epoch ${next}`);
    const what = [
      change.activeSite ? `active site → ${change.activeSite}` : '',
      change.fence ? `fenced ${change.fence}` : '',
      change.unfence ? `unfenced ${change.unfence}` : '',
    ].filter(Boolean);
    await this.audit(app, {
      actor: change.actor,
      action: 'advance-epoch',
      detail: `${what.join(', ') || 'epoch only'}: ${change.reason}`,
      epoch: next,
    });
    return next;
  }

  /**
   * Records `activeSite` at the current epoch, which must still be `expectEpoch` (compare-and-set):
   * the end of an unplanned failover, whose epoch advanced when it fenced the old site.
   */
  async setActiveSite(
    app: string,
    change: { expectEpoch: number; activeSite: string; actor: string; reason: string },
  ): Promise<void> {
    const ok = (await this.redis.eval(
      SET_ACTIVE,
      1,
      this.key(app, 'state'),
      String(change.expectEpoch),
      change.activeSite,
    )) as number;
    if (ok !== 1) {
      throw new StaleEpochError(app, change.expectEpoch, (await this.state(app)).epoch);
    }
    await this.replicated(`${app}'s active site ${change.activeSite}`);
    await this.audit(app, {
      actor: change.actor,
      action: 'set-active-site',
      detail: `active site → ${change.activeSite}: ${change.reason}`,
      epoch: change.expectEpoch,
    });
  }

  /**
   * The application's protection record: its volumes and replica counts as last seen on its active
   * site, what an unplanned failover needs when the source cannot be asked (RamenDR keeps the same
   * PV metadata in an object store).
   */
  async recordProtection(app: string, record: object): Promise<void> {
    await this.redis.set(this.key(app, 'volumes'), JSON.stringify({ at: new Date().toISOString(), record }));
  }

  async protection<T>(app: string): Promise<{ at: string; record: T } | undefined> {
    const raw = await this.redis.get(this.key(app, 'volumes'));
    return raw ? (JSON.parse(raw) as { at: string; record: T }) : undefined;
  }

  /**
   * Claims an alert rule's cool-down: true (and the cool-down starts) unless one is running, so a
   * rule starts at most one operation per cool-down however many triggers race.
   */
  async claimCoolDown(rule: string, ms: number, holder = new Date().toISOString()): Promise<boolean> {
    if (ms <= 0) return true;
    return (await this.redis.set(this.key(rule, 'cooldown'), holder, 'PX', ms, 'NX')) === 'OK';
  }

  /**
   * Gives a cool-down back when the trigger that claimed it started nothing (the start failed or
   * was refused): only a started operation may hold the rule back. Only `holder`'s claim is given back.
   */
  async releaseCoolDown(rule: string, holder: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.key(rule, 'cooldown'), holder)) === 1;
  }

  /** Who holds the rule's cool-down now (undefined: none, the rule may fire). */
  async coolDownHolder(rule: string): Promise<string | undefined> {
    return (await this.redis.get(this.key(rule, 'cooldown'))) ?? undefined;
  }

  /** Remembers a value for `ms`: true the first time, false while it is remembered (replay detection). */
  async firstSeen(kind: string, value: string, ms: number): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}:seen:${kind}:${value}`, '1', 'PX', ms, 'NX')) === 'OK';
  }

  /**
   * The applications that rely on the storage fence of `site`'s client networks: a CIDR fence
   * cuts every application writing from there, so it is lifted only once none is left.
   * `addFenceOwner` and `removeFenceOwner` return the owners after the change.
   */
  addFenceOwner(site: string, app: string): Promise<string[]> {
    return this.changeFenceOwners(site, 'sadd', app);
  }

  removeFenceOwner(site: string, app: string): Promise<string[]> {
    return this.changeFenceOwners(site, 'srem', app);
  }

  private async changeFenceOwners(site: string, change: 'sadd' | 'srem', app: string): Promise<string[]> {
    const key = `${this.prefix}:fence-owners:{${site}}`;
    const [, [, owners]] = (await this.redis.multi()[change](key, app).smembers(key).exec()) as [
      unknown,
      [unknown, string[]],
    ];
    await this.replicated(`the owners of ${site}'s fence`);
    return owners.sort();
  }

  /** Refuses (StaleEpochError) unless `held` is the current epoch: every mutating step calls it first. */
  async checkEpoch(app: string, held: number): Promise<void> {
    const { epoch } = await this.state(app);
    if (epoch !== held) throw new StaleEpochError(app, held, epoch);
  }

  /** Takes the application's operation lock for `holder`, or throws LockHeldError naming the holder. */
  async acquireLock(app: string, holder: string, ttlMs: number): Promise<void> {
    // Re-entrant: the operation that holds the lock renews it.
    const other = (await this.redis.eval(ACQUIRE, 1, this.key(app, 'lock'), holder, String(ttlMs))) as string;
    if (other !== '') throw new LockHeldError(app, other);
    await this.replicated(`${app}'s lock`);
  }

  /**
   * Gives the lock to `holder` if `from` still has it (a holder whose workflow is closed); returns
   * whether it did. Compare-and-set: two operations taking over at once cannot both win.
   */
  async takeOverLock(app: string, from: string, holder: string, ttlMs: number): Promise<boolean> {
    const took =
      (await this.redis.eval(TAKE_OVER, 1, this.key(app, 'lock'), from, holder, String(ttlMs))) === 1;
    if (took) await this.replicated(`${app}'s lock`);
    return took;
  }

  /** Releases the lock if `holder` has it; returns whether it did. */
  async releaseLock(app: string, holder: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 1, this.key(app, 'lock'), holder)) === 1;
  }

  async lockHolder(app: string): Promise<string | undefined> {
    return (await this.redis.get(this.key(app, 'lock'))) ?? undefined;
  }

  async audit(app: string, entry: Omit<AuditEntry, 'at' | 'app'>): Promise<void> {
    await this.redis.xadd(
      this.key(app, 'audit'),
      'MAXLEN',
      '~',
      '10000',
      '*',
      'entry',
      JSON.stringify({ at: new Date().toISOString(), app, ...entry }),
    );
  }

  /** The newest `count` audit entries, oldest first. */
  async auditTrail(app: string, count = 100): Promise<AuditEntry[]> {
    const rows = await this.redis.xrevrange(this.key(app, 'audit'), '+', '-', 'COUNT', count);
    return rows.reverse().map(([, fields]) => JSON.parse(fields[1] ?? '{}') as AuditEntry);
  }

  /**
   * Keeps a drill's evidence (its report as JSON) for `retentionMs`, indexed by time. Idempotent:
   * saving the same id again replaces it.
   */
  async saveDrill(id: string, endedAtMs: number, json: string, retentionMs: number): Promise<void> {
    await this.redis
      .multi()
      .set(`${this.prefix}:drill:${id}`, json, 'PX', retentionMs)
      .zadd(`${this.prefix}:drills`, endedAtMs, id)
      .exec();
  }

  /** A drill's evidence, or undefined once it is past its retention (or never was). */
  async drill(id: string): Promise<string | undefined> {
    return (await this.redis.get(`${this.prefix}:drill:${id}`)) ?? undefined;
  }

  /** The drills still kept, newest first (at most `count`); expired entries leave the index. */
  async drills(count = 100): Promise<string[]> {
    const ids = await this.redis.zrevrange(`${this.prefix}:drills`, 0, count - 1);
    if (ids.length === 0) return [];
    const values = await this.redis.mget(ids.map((id) => `${this.prefix}:drill:${id}`));
    const gone = ids.filter((_, i) => values[i] === null);
    if (gone.length > 0) await this.redis.zrem(`${this.prefix}:drills`, ...gone);
    return values.filter((v): v is string => v !== null);
  }
}
