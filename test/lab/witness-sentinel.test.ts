/**
 * The witness on a Redis Sentinel set (a master, a replica, one sentinel, all real redis-server
 * processes): a change of epoch is reported done only once a replica holds it, so a Sentinel
 * failover never hands Pivot an epoch lower than one a step already acted on (hole 14 of the
 * safety review; docs/safety.md, invariant 5).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createControlActivities } from '../../activities/control.ts';
import { sleep, waitUntil } from '../../common/wait.ts';
import type { PivotConfig } from '../../config/types.ts';
import { provisionTools } from '../../lab/tools.ts';
import { witnessFor, witnessRedis } from '../../witness/connect.ts';
import { type Witness, WitnessNotDurableError } from '../../witness/witness.ts';
import { lab, uniqueName } from './helpers.ts';

// Beside the lab's own Redis port, in the lab's port range.
const MASTER = lab.layout.ports.redis + 20;
const REPLICA = MASTER + 1;
const SENTINEL = MASTER + 2;

let dir: string;
let redisServer: string;
const processes = new Map<number, ChildProcess>();

function startRedis(port: number, args: string[]): void {
  const child = spawn(
    redisServer,
    [...args, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { cwd: dir, stdio: 'ignore' },
  );
  processes.set(port, child);
}

// Passwords as a bank sets them, on the data nodes and on the sentinels; Pivot reads them from files.
const DATA_PASSWORD = 'data-secret-1';
const SENTINEL_PASSWORD = 'sentinel-secret-2';

async function answers(port: number, password: string): Promise<void> {
  const probe = new Redis(port, '127.0.0.1', {
    password,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  try {
    await waitUntil(`redis on ${port}`, async () => {
      await probe.connect().catch(() => undefined);
      return (await probe.ping()) === 'PONG';
    });
  } finally {
    probe.disconnect();
  }
}

function signal(port: number, sig: NodeJS.Signals): void {
  processes.get(port)?.kill(sig);
}

/** The Sentinel configuration a bank would give Pivot, with a short wait so refusals are quick. */
function sentinelConfig(
  waitForReplicas: number,
  passwordFile = join(dir, 'redis-password'),
): Pick<PivotConfig, 'witness'> {
  return {
    witness: {
      passwordFile,
      sentinel: {
        passwordFile: join(dir, 'sentinel-password'),
        masterName: 'pivot',
        sentinels: [`127.0.0.1:${SENTINEL}`],
        waitForReplicas,
        waitTimeoutMs: 500,
      },
    },
  };
}

/** A replica's own view, read directly (not through Sentinel). */
async function epochOnReplica(app: string, prefix: string): Promise<number> {
  const r = new Redis(REPLICA, '127.0.0.1', { maxRetriesPerRequest: 1, password: DATA_PASSWORD });
  try {
    return Number((await r.hget(`${prefix}:state:{${app}}`, 'epoch')) ?? 0);
  } finally {
    r.disconnect();
  }
}

beforeAll(async () => {
  redisServer = (await provisionTools()).bin['redis-server'];
  dir = mkdtempSync(join(tmpdir(), 'pivot-sentinel-'));
  const auth = ['--requirepass', DATA_PASSWORD, '--masterauth', DATA_PASSWORD];
  startRedis(MASTER, auth);
  startRedis(REPLICA, [...auth, '--replicaof', '127.0.0.1', String(MASTER)]);
  writeFileSync(join(dir, 'redis-password'), `${DATA_PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'sentinel-password'), `${SENTINEL_PASSWORD}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'wrong-password'), 'not-it\n', { mode: 0o600 });
  // Sentinel rewrites its file, so it lives in the temporary directory.
  writeFileSync(
    join(dir, 'sentinel.conf'),
    [
      `sentinel monitor pivot 127.0.0.1 ${MASTER} 1`,
      `sentinel auth-pass pivot ${DATA_PASSWORD}`,
      `requirepass ${SENTINEL_PASSWORD}`,
      'sentinel down-after-milliseconds pivot 1000',
      'sentinel failover-timeout pivot 10000',
      '',
    ].join('\n'),
  );
  await answers(MASTER, DATA_PASSWORD);
  await answers(REPLICA, DATA_PASSWORD);
  startRedis(SENTINEL, [join(dir, 'sentinel.conf'), '--sentinel']);
  await answers(SENTINEL, SENTINEL_PASSWORD);
  const master = new Redis(MASTER, '127.0.0.1', { password: DATA_PASSWORD });
  try {
    await waitUntil('the replica to be in sync', async () => {
      const info = await master.info('replication');
      return /connected_slaves:1/.test(info) && /state=online/.test(info) ? true : info;
    });
  } finally {
    master.disconnect();
  }
}, 60_000);

afterAll(() => {
  for (const child of processes.values()) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('the witness on Redis Sentinel', () => {
  let redis: Redis;
  let witness: Witness;
  const prefix = uniqueName('sentinel');

  beforeEach(() => {
    redis = witnessRedis(sentinelConfig(1), { maxRetriesPerRequest: 2 });
    // Failover drops connections; the assertions say what matters.
    redis.on('error', () => undefined);
    witness = witnessFor(sentinelConfig(1), redis, prefix);
  });

  afterEach(() => {
    signal(REPLICA, 'SIGCONT');
    redis.disconnect();
  });

  it('reads its passwords from files, and a wrong one is refused with nothing written', async () => {
    const wrong = witnessRedis(sentinelConfig(1, join(dir, 'wrong-password')), {
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    wrong.on('error', () => undefined);
    const app = uniqueName('app');
    await expect(
      witnessFor(sentinelConfig(1), wrong, prefix).advanceEpoch(app, {
        expectEpoch: 0,
        actor: 'test',
        reason: 'wrong password',
      }),
    ).rejects.toThrow(/WRONGPASS|NOAUTH|invalid (username-)?password|Connection is closed/i);
    wrong.disconnect();
    expect(await epochOnReplica(app, prefix)).toBe(0);
    // The right files: the witness works through the sentinel.
    expect(await redis.ping()).toBe('PONG');
  });

  it('reports a change of epoch done only once a replica holds it', async () => {
    const app = uniqueName('app');
    const epoch = await witness.advanceEpoch(app, {
      expectEpoch: 0,
      activeSite: 'dc-a',
      actor: 'test',
      reason: 'initial',
    });
    expect(epoch).toBe(1);
    expect(await epochOnReplica(app, prefix)).toBe(1);
  });

  it('refuses a change no replica acknowledges, and a retry trusts it only once a replica holds it', async () => {
    const app = uniqueName('app');
    const control = createControlActivities(witness);
    await witness.advanceEpoch(app, { expectEpoch: 0, activeSite: 'dc-a', actor: 'test', reason: 'initial' });
    signal(REPLICA, 'SIGSTOP');
    await expect(control.recordActiveSite(app, 'op-1', 1, 'dc-b', 'switchover')).rejects.toThrow(
      WitnessNotDurableError,
    );
    // The retry finds the change made on the master, but still no replica holds it.
    await expect(control.recordActiveSite(app, 'op-1', 1, 'dc-b', 'switchover')).rejects.toThrow(
      /only 0 of 1 replica\(s\) acknowledged/,
    );
    signal(REPLICA, 'SIGCONT');
    expect(await control.recordActiveSite(app, 'op-1', 1, 'dc-b', 'switchover')).toBe(2);
    expect(await epochOnReplica(app, prefix)).toBe(2);
    expect((await witness.state(app)).epoch).toBe(2);
  });

  // Last: it fails the master over to the replica.
  it('never loses an acknowledged epoch when Sentinel fails the master over', async () => {
    const app = uniqueName('app');
    const acknowledged: number[] = [];
    acknowledged.push(
      await witness.advanceEpoch(app, {
        expectEpoch: 0,
        activeSite: 'dc-a',
        actor: 'test',
        reason: 'initial',
      }),
    );
    // The replica falls behind, then the master dies before it catches up.
    signal(REPLICA, 'SIGSTOP');
    try {
      acknowledged.push(
        await witness.advanceEpoch(app, {
          expectEpoch: 1,
          activeSite: 'dc-b',
          actor: 'test',
          reason: 'switchover',
        }),
      );
    } catch (err) {
      expect(err).toBeInstanceOf(WitnessNotDurableError);
    }
    signal(MASTER, 'SIGKILL');
    await sleep(100);
    signal(REPLICA, 'SIGCONT');
    const sentinel = new Redis(SENTINEL, '127.0.0.1', { password: SENTINEL_PASSWORD });
    try {
      await waitUntil(
        'Sentinel to promote the replica',
        async () => {
          const [, port] = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', 'pivot')) as string[];
          return port === String(REPLICA) || `master on ${port}`;
        },
        { timeoutMs: 30_000 },
      );
    } finally {
      sentinel.disconnect();
    }
    let after = -1;
    await waitUntil('the witness to answer from the new master', async () => {
      after = (await witness.state(app)).epoch;
      return true;
    });
    // Every epoch the witness acknowledged survived the failover.
    expect(after).toBeGreaterThanOrEqual(Math.max(...acknowledged));
  }, 60_000);
});
