/**
 * The Kubernetes clients' HTTP layer against a real local HTTP server that answers as a strained
 * API server would: refusals it retries (429 with Retry-After, 503, a cut connection), answers it
 * passes on at once (404), and a server that never answers (the timeout, not retried).
 */
import * as k8s from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { retryingConfiguration, type ApiRetryPolicy } from '../../common/k8s-retry.ts';

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

const NAMESPACES = JSON.stringify({ apiVersion: 'v1', kind: 'NamespaceList', metadata: {}, items: [] });
const ok: Answer = (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(NAMESPACES);
const status =
  (code: number, headers: Record<string, string> = {}): Answer =>
  (_req, res) =>
    res
      .writeHead(code, { 'content-type': 'application/json', ...headers })
      .end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code }));
const cut: Answer = (req) => req.socket.destroy();
const silent: Answer = () => undefined;

let server: Server;
let script: Answer[] = [];
let seen = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    const answer = script[seen] ?? ok;
    seen += 1;
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const FAST: ApiRetryPolicy = { retries: 4, baseDelayMs: 10, maxDelayMs: 1500, timeoutMs: 500 };

function core(policy = FAST): k8s.CoreV1Api {
  const kc = new k8s.KubeConfig();
  const { port } = server.address() as AddressInfo;
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return new k8s.CoreV1Api(retryingConfiguration(kc, policy));
}

function serve(...answers: Answer[]): void {
  script = answers;
  seen = 0;
}

describe("the Kubernetes clients' retries", () => {
  it('rides out 503s, a cut connection and a 429 with its Retry-After', async () => {
    serve(status(503), cut, status(429, { 'retry-after': '1' }), ok);
    const started = Date.now();
    expect((await core().listNamespace()).kind).toBe('NamespaceList');
    expect(seen).toBe(4);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('gives up after its retries with the last answer', async () => {
    serve(status(503), status(503), status(503), status(503), status(503), ok);
    await expect(core().listNamespace()).rejects.toMatchObject({ code: 503 });
    expect(seen).toBe(5);
  });

  it('passes on an answer the server meant at once', async () => {
    serve(status(404), ok);
    await expect(core().readNamespace({ name: 'missing' })).rejects.toMatchObject({ code: 404 });
    expect(seen).toBe(1);
  });

  it('bounds each request, and does not retry one that timed out', async () => {
    serve(silent, ok);
    const started = Date.now();
    await expect(core().listNamespace()).rejects.toThrow();
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(seen).toBe(1);
  });
});
