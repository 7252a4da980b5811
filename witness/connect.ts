/** A Redis client for the witness from the configuration: a standalone URL or Sentinel. */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
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

/** A secret from its file, without the trailing newline editors add; an empty file is an error. */
function secret(file: string, what: string): string {
  const value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (!value) throw new Error(`${what} ${file} is empty`);
  return value;
}

/**
 * The ioredis options the configuration asks for: passwords read from their files, TLS (a private
 * CA, a client pair, the server name) to Redis and, with Sentinel, to the sentinels too.
 */
export function witnessRedisOptions(witness: PivotConfig['witness']): RedisOptions {
  const tls: ConnectionOptions | undefined = witness.tls
    ? {
        ...(witness.tls.caFile ? { ca: readFileSync(witness.tls.caFile) } : {}),
        ...(witness.tls.certFile && witness.tls.keyFile
          ? { cert: readFileSync(witness.tls.certFile), key: readFileSync(witness.tls.keyFile) }
          : {}),
        ...(witness.tls.serverName ? { servername: witness.tls.serverName } : {}),
      }
    : witness.redisUrl?.startsWith('rediss://')
      ? {}
      : undefined;
  const password = witness.passwordFile ? secret(witness.passwordFile, 'witness.passwordFile') : undefined;
  const s = witness.sentinel;
  if (s) {
    return {
      sentinels: s.sentinels.map((x) => {
        const [host, port] = x.split(':');
        return { host: host ?? x, port: Number(port ?? 26379) };
      }),
      name: s.masterName,
      ...(password ? { password } : {}),
      ...(s.passwordFile
        ? { sentinelPassword: secret(s.passwordFile, 'witness.sentinel.passwordFile') }
        : {}),
      ...(tls ? { tls, enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
    };
  }
  return { maxRetriesPerRequest: 3, ...(password ? { password } : {}), ...(tls ? { tls } : {}) };
}

export function witnessRedis(config: Pick<PivotConfig, 'witness'>, options: RedisOptions = {}): Redis {
  const w = config.witness;
  const built = witnessRedisOptions(w);
  return w.sentinel ? new Redis({ ...built, ...options }) : new Redis(w.redisUrl!, { ...built, ...options });
}
