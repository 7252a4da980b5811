/**
 * The HTTP layer under every Kubernetes client Pivot builds: each request gets a timeout, and one
 * that the API server (or a load balancer before it) turned away without acting on it is tried
 * again after a short backoff, the way client-go and kubectl ride out 429s and 5xx.
 *
 * Without it a step that makes many requests fails whole on any single one: with one request in
 * five answered 503, a rebind of four volumes (about twenty requests) failed every attempt the
 * activity's retry policy allowed, and a switchover ended needing attention (the chaos suite's
 * flaky-API scenario, docs/reliability.md).
 *
 * Retried: 429 and 503 (the server says it did not act; Retry-After honoured up to a cap), 502
 * and 504 (a proxy before the server), and a connection that failed or was cut before an answer.
 * A request that may have been applied and is retried (a create cut off mid-flight) meets its own
 * object (409 AlreadyExists), which the activities already read as "done before". Not retried: a
 * timeout (the server may be gone; the activity's retry policy decides) and the caller's abort.
 */
import * as k8s from '@kubernetes/client-node';
import http from 'node:http';
import https from 'node:https';
import { sleep } from './wait.ts';

export interface ApiRetryPolicy {
  /** Attempts after the first. */
  retries: number;
  /** Backoff before the first retry; doubled each time, with jitter. */
  baseDelayMs: number;
  /** Never wait longer than this between attempts, whatever Retry-After says. */
  maxDelayMs: number;
  /** Each attempt's limit (the whole exchange, body included). */
  timeoutMs: number;
}

export const API_RETRY: ApiRetryPolicy = {
  retries: 4,
  baseDelayMs: 100,
  maxDelayMs: 2000,
  timeoutMs: 30_000,
};

const RETRY_STATUS = new Set([429, 502, 503, 504]);

/** A network failure before any answer (reset, refused, hang-up), not a timeout or an abort. */
function isConnectionFailure(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'AbortError' || err.name === 'TimeoutError') return false;
  const e = err as Error & { type?: string; code?: string };
  return (
    e.type === 'system' ||
    /ECONNRESET|ECONNREFUSED|EPIPE|socket hang up/i.test(`${e.code ?? ''} ${e.message}`)
  );
}

function delayMs(policy: ApiRetryPolicy, attempt: number, retryAfter: string | undefined): number {
  const backoff = policy.baseDelayMs * 2 ** attempt * (0.5 + Math.random());
  const asked = retryAfter !== undefined && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : 0;
  return Math.min(policy.maxDelayMs, Math.max(backoff, asked));
}

/** The TLS material an agent was made with: a new agent is needed only when it changes. */
const TLS_KEYS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

function sameTls(a: https.AgentOptions, b: https.AgentOptions): boolean {
  return TLS_KEYS.every((k) => {
    const x: unknown = a[k];
    const y: unknown = b[k];
    return Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : x === y;
  });
}

/**
 * One keep-alive agent per client instead of the new agent the client library makes for every
 * request: with a new one, every request paid a fresh TLS handshake (a new secure context, the
 * certificates parsed again) on both ends. Profiled on the lab's storage simulator at 900 volumes,
 * that was half of its CPU time, and the API servers paid as much. Proxy agents are left alone.
 */
export class AgentPool {
  private shared: { agent: http.Agent; options: https.AgentOptions } | undefined;

  reuse(fresh: unknown): http.Agent | undefined {
    const kind =
      fresh instanceof https.Agent && fresh.constructor === https.Agent
        ? 'https'
        : fresh instanceof http.Agent && fresh.constructor === http.Agent
          ? 'http'
          : undefined;
    if (!kind) return undefined;
    const options = (fresh as http.Agent & { options: https.AgentOptions }).options;
    if (
      !this.shared ||
      !sameTls(this.shared.options, options) ||
      !(this.shared.agent instanceof (kind === 'https' ? https.Agent : http.Agent))
    ) {
      this.shared?.agent.destroy();
      const keepAlive = { ...options, keepAlive: true, maxFreeSockets: 32 };
      this.shared = {
        agent: kind === 'https' ? new https.Agent(keepAlive) : new http.Agent(keepAlive),
        options,
      };
    }
    (fresh as http.Agent).destroy();
    return this.shared.agent;
  }
}

export class RetryingHttpLibrary implements k8s.PromiseHttpLibrary {
  private readonly inner = new k8s.IsomorphicFetchHttpLibrary();
  private readonly agents = new AgentPool();

  constructor(
    private readonly policy: ApiRetryPolicy = API_RETRY,
    /** Called before each retry (for logs and counters). */
    private readonly onRetry?: (what: {
      method: string;
      url: string;
      attempt: number;
      reason: string;
    }) => void,
    private readonly userAgent?: string,
  ) {}

  async send(request: k8s.RequestContext): Promise<k8s.ResponseContext> {
    if (this.userAgent) request.setHeaderParam('User-Agent', this.userAgent);
    const shared = this.agents.reuse(request.getAgent());
    if (shared) request.setAgent(shared);
    const callerSignal = request.getSignal();
    for (let attempt = 0; ; attempt += 1) {
      const timeout = AbortSignal.timeout(this.policy.timeoutMs);
      request.setSignal(callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout);
      let response: k8s.ResponseContext | undefined;
      let failure: unknown;
      try {
        response = await this.inner.send(request).toPromise();
      } catch (err) {
        failure = err;
      }
      const reason = response
        ? RETRY_STATUS.has(response.httpStatusCode)
          ? `HTTP ${response.httpStatusCode}`
          : undefined
        : isConnectionFailure(failure) && !callerSignal?.aborted
          ? (failure as Error).message
          : undefined;
      if (reason === undefined || attempt >= this.policy.retries) {
        if (response) return response;
        throw failure;
      }
      this.onRetry?.({
        method: request.getHttpMethod().toString(),
        url: request.getUrl(),
        attempt: attempt + 1,
        reason,
      });
      await sleep(delayMs(this.policy, attempt, response?.headers['retry-after']));
    }
  }
}

/** A client configuration for `kubeConfig`'s current cluster, over the retrying HTTP layer. */
export function retryingConfiguration(
  kubeConfig: k8s.KubeConfig,
  policy: ApiRetryPolicy = API_RETRY,
  userAgent?: string,
): k8s.Configuration {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig names no current cluster');
  return k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: kubeConfig },
    httpApi: k8s.wrapHttpLibrary(new RetryingHttpLibrary(policy, undefined, userAgent)),
  });
}
