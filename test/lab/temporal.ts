/**
 * What a lab suite needs to drive Pivot's workflows: a Temporal client and the witness, against
 * the lab's Temporal and Redis. The workflows run on the lab's own workers (started by
 * `pivot lab up`), as they do for a user; connect once per suite and close in afterAll.
 */
import { Client, Connection } from '@temporalio/client';
import { Redis } from 'ioredis';
import { Witness } from '../../witness/witness.ts';
import { status } from './helpers.ts';

export interface LabPivot {
  client: Client;
  witness: Witness;
  /** The witness's Redis itself, for tests that take its data away. */
  redis: Redis;
  close(): Promise<void>;
}

export async function connectPivot(): Promise<LabPivot> {
  const s = await status();
  const redis = new Redis(s.redis.url, { maxRetriesPerRequest: 1 });
  const connection = await Connection.connect({ address: s.temporal.address });
  return {
    client: new Client({ connection, namespace: s.temporal.namespace }),
    witness: new Witness(redis),
    redis,
    async close() {
      await connection.close();
      await redis.quit();
    },
  };
}
