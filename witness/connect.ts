/** A Redis client for the witness from the configuration: a standalone URL or Sentinel. */
import { Redis, type RedisOptions } from 'ioredis';
import type { PivotConfig } from '../config/types.ts';

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
