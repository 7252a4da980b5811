/**
 * TLS everywhere, on the lab: the API over HTTPS and a worker over Temporal mTLS, with a CA the
 * test makes. The lab's Temporal (the CLI's dev server) speaks plain gRPC, so the test puts an
 * mTLS front before it, as a TLS-terminating proxy does before a Temporal cluster: the front asks
 * every client for a certificate signed by the test's CA and refuses the rest. A second API and a
 * second control worker, configured from the lab's configuration with `api.tls` and
 * `temporal.tls`, must then work through it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Connection } from '@temporalio/client';
import { loadConfig } from '../../config/load.ts';
import { CONTROL_TASK_QUEUE } from '../../common/task-queues.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { waitUntil } from '../../common/wait.ts';
import { lab } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'pivot-tls-'));
const file = (name: string) => join(dir, name);

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A new P-256 key, unencrypted: a test's throwaway. */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A self-signed certificate (a CA's, or a stranger's) and its key, as `<name>.crt` / `<name>.key`. */
function selfSigned(name: string, cn: string): void {
  openssl([
    'req',
    '-x509',
    ...NEW_EC_KEY,
    '-days',
    '2',
    '-subj',
    `/CN=${cn}`,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
  ]);
}

/** A CA, and a certificate it signs for `name` (a server's carries the loopback names). */
function makePki(): void {
  selfSigned('ca', 'pivot-test-ca');
  const issue = (name: string, ext: string) => {
    openssl(['req', ...NEW_EC_KEY, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
    writeFileSync(file(`${name}.ext`), ext);
    openssl([
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ]);
  };
  issue('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  issue('pivot-worker', 'extendedKeyUsage=clientAuth\n');
  // A client certificate from another CA: the front must refuse it.
  selfSigned('rogue', 'rogue');
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The mTLS front of the lab's Temporal; it records the client certificates it let through. */
function mtlsFront(upstream: number): { server: tls.Server; clients: string[]; sockets: Set<net.Socket> } {
  const clients: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    {
      ca: readFileSync(file('ca.crt')),
      cert: readFileSync(file('server.crt')),
      key: readFileSync(file('server.key')),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
    },
    (socket) => {
      clients.push(socket.getPeerCertificate().subject.CN as string);
      const up = net.connect(upstream, '127.0.0.1');
      for (const s of [socket, up]) {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      }
      socket.pipe(up).pipe(socket);
      const close = () => {
        socket.destroy();
        up.destroy();
      };
      socket.on('error', close);
      up.on('error', close);
    },
  );
  server.on('tlsClientError', () => undefined);
  return { server, clients, sockets };
}

const children: ChildProcess[] = [];

function start(args: string[]): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  children.push(child);
  return { child, output: () => out };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path, ca: readFileSync(file('ca.crt')) }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** Whether a TLS client with this pair (or none) completes a request-response with the front. */
function frontAccepts(port: number, pair?: { cert: string; key: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: readFileSync(file('ca.crt')),
      ALPNProtocols: ['h2'],
      ...(pair ? { cert: readFileSync(file(pair.cert)), key: readFileSync(file(pair.key)) } : {}),
    });
    // TLS 1.3 reports a refused client certificate after the handshake: wait for the verdict.
    socket.on('secureConnect', () => setTimeout(() => resolve(!socket.destroyed), 500));
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

let front: ReturnType<typeof mtlsFront>;
let frontPort: number;
let apiPort: number;
let configFile: string;

beforeAll(async () => {
  makePki();
  frontPort = await freePort();
  apiPort = await freePort();
  front = mtlsFront(lab.layout.ports.temporal);
  await new Promise<void>((resolve) => front.server.listen(frontPort, '127.0.0.1', resolve));
  const config = loadConfig(lab.layout.configFile);
  config.api = {
    ...config.api,
    listen: `127.0.0.1:${apiPort}`,
    tls: { certFile: file('server.crt'), keyFile: file('server.key') },
  };
  config.temporal = {
    ...config.temporal,
    address: `127.0.0.1:${frontPort}`,
    tls: { caFile: file('ca.crt'), certFile: file('pivot-worker.crt'), keyFile: file('pivot-worker.key') },
  };
  configFile = file('pivot.yaml');
  writeFileSync(configFile, stringify(config));
});

afterAll(async () => {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
  for (const s of front.sockets) s.destroy();
  await new Promise<void>((resolve) => front.server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('transport security on the lab', () => {
  it('the Temporal front refuses a client without a certificate from its CA', async () => {
    expect(await frontAccepts(frontPort)).toBe(false);
    expect(await frontAccepts(frontPort, { cert: 'rogue.crt', key: 'rogue.key' })).toBe(false);
    expect(await frontAccepts(frontPort, { cert: 'pivot-worker.crt', key: 'pivot-worker.key' })).toBe(true);
  });

  it('the API serves HTTPS only, and reaches Temporal over mTLS', async () => {
    const api = start([join(REPO_ROOT, 'api', 'main.ts'), '--config', configFile]);
    // /readyz asks Temporal for its system info: ready means the mTLS connection works.
    await waitUntil(
      'the HTTPS API to be ready',
      async () => {
        if (api.child.exitCode !== null) throw new Error(`the API exited: ${api.output().slice(-2000)}`);
        const r = await get(apiPort, '/readyz').catch(() => undefined);
        return r?.status === 200 || (r ? `${r.status} ${r.body}` : 'not listening');
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(front.clients).toContain('pivot-worker');
    // Plain HTTP on the same port gets no answer an HTTP client can use.
    const plain = await fetch(`http://127.0.0.1:${apiPort}/healthz`).then(
      (r) => r.status,
      () => 'refused',
    );
    expect(plain).not.toBe(200);
    // The board's session cookie is Secure when the API serves HTTPS itself.
    const token = (
      JSON.parse(readFileSync(lab.layout.tokensFile, 'utf8')) as { tokens: Record<string, string> }
    ).tokens['viewer']!;
    const setCookie = await new Promise<string>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: apiPort,
          path: '/board/session',
          method: 'POST',
          ca: readFileSync(file('ca.crt')),
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(String(res.headers['set-cookie'] ?? ''));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ token }));
    });
    expect(setCookie).toMatch(/pivot_session=/);
    expect(setCookie).toMatch(/;\s*Secure/i);
  });

  it('a worker polls its task queue over mTLS', async () => {
    const worker = start([join(REPO_ROOT, 'worker', 'main.ts'), 'control', '--config', configFile]);
    await waitUntil(
      'the mTLS worker to be ready',
      () => {
        if (worker.child.exitCode !== null)
          throw new Error(`the worker exited: ${worker.output().slice(-2000)}`);
        return Promise.resolve(worker.output().includes('"worker ready"') || 'starting');
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    // Temporal itself sees the new worker's poller (its identity carries the pid).
    const connection = await Connection.connect({ address: `127.0.0.1:${lab.layout.ports.temporal}` });
    try {
      await waitUntil(
        "the mTLS worker's poller on the control task queue",
        async () => {
          const answer = await connection.workflowService.describeTaskQueue({
            namespace: 'default',
            taskQueue: { name: CONTROL_TASK_QUEUE },
          });
          const identities = (answer.pollers ?? []).map((p) => p.identity ?? '');
          return identities.some((i) => i.startsWith(`${worker.child.pid}@`)) || identities.join(', ');
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    } finally {
      await connection.close();
    }
    expect(front.clients.filter((c) => c === 'pivot-worker').length).toBeGreaterThan(1);
  });
});
