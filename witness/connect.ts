/** A Redis client for the witness from the configuration: a standalone URL or Sentinel. */
import { Redis, type RedisOptions } from 'ioredis';
import type { PivotConfig } from '../config/types.ts';
import { Witness, type WitnessDurability } from './witness.ts';

/**
 * How many replicas must hold a change before the witness reports it: with Sentinel, a failover
 * may promote any replica, so by default one must acknowledge each change (Redis WAIT). A
 * standalone Redis has no failover and no replica to wait for.
 */
export function witnessDurability(config: Pick<PivotConfig, 'witness'>): WitnessDurability {
  const s = config.witness.sentinel;
  if (!s) return { replicas: 0, timeoutMs: 0 };
  return { replicas: s.waitForReplicas ?? 1, timeoutMs: s.waitTimeoutMs ?? 5000 };
}

/** The witness over `redis`, as durable as the configuration asks. */
export function witnessFor(config: Pick<PivotConfig, 'witness'>, redis: Redis, prefix?: string): Witness {
  return new Witness(redis, { durability: witnessDurability(config), ...(prefix ? { prefix } : {}) });
}

export function witnessRedis(config: Pick<PivotConfig, 'witness'>, options: RedisOptions = {}): Redis {
  const w = config.witness;
  if (w.sentinel) {
    return new Redis({
      sentinels: w.sentinel.sentinels.map((s) => {
        const [host, port] = s.split(':');
        return { host: host ?? s, port: Number(port ?? 26379) };
      }),
      name: w.sentinel.masterName,
      ...(w.sentinel.password ? { password: w.sentinel.password } : {}),
      ...options,
    });
  }
  return new Redis(w.redisUrl!, { maxRetriesPerRequest: 3, ...options });
}
