/**
 * Pivot's workers for a lab suite, in the test process: the control worker and one worker per
 * site, against the lab's Temporal and Redis, plus a client. Start once per suite; stop in afterAll.
 */
import { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import { Redis } from 'ioredis';
import { connectTemporal, createControlWorker, createSiteWorker } from '../../worker/workers.ts';
import { Witness } from '../../witness/witness.ts';
import { status } from './helpers.ts';

export interface LabWorkers {
  client: Client;
  witness: Witness;
  redis: Redis;
  stop(): Promise<void>;
}

export async function startWorkers(witnessPrefix: string): Promise<LabWorkers> {
  const s = await status();
  const redis = new Redis(s.redis.url, { maxRetriesPerRequest: 1 });
  const witness = new Witness(redis, witnessPrefix);
  const native: NativeConnection = await connectTemporal({
    address: s.temporal.address,
    namespace: s.temporal.namespace,
  });
  const workers: Worker[] = [
    await createControlWorker(native, s.temporal.namespace, witness),
    ...(await Promise.all(
      s.sites.map((site) => createSiteWorker(native, s.temporal.namespace, site, witness)),
    )),
  ];
  const running = workers.map((w) => w.run());
  const connection = await Connection.connect({ address: s.temporal.address });
  return {
    client: new Client({ connection, namespace: s.temporal.namespace }),
    witness,
    redis,
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.all(running);
      await connection.close();
      await native.close();
      await redis.quit();
    },
  };
}
