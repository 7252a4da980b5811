/**
 * The lab's API proxy: one HTTPS listener per site in front of its kube-apiserver, through which
 * Pivot (its workers, its API, its CLI) reaches the site, and which can fail on demand: 5xx, 429,
 * latency, cut connections, a blackhole. Tests and the lab's own checks go to the API servers
 * directly, so a fault injected here is one that only Pivot sees.
 *
 * It terminates TLS with the site's own serving certificate (kwok's admin pair carries the
 * loopback addresses), so a kubeconfig for the proxy differs from the site's only in its server URL
 * and its user. A request that carries its own credentials (Pivot's ServiceAccount tokens, see
 * lab/identities.ts) goes upstream with them and nothing else, so the site's RBAC judges Pivot as
 * it would in a datacenter; one without goes upstream with the site's admin certificate. A site
 * whose API server is down gets its client connections cut, as a dead site's clients see it, not
 * a 502.
 */
import { readFileSync } from 'node:fs';
import type * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import { decide, isFault, NO_FAULTS, type ApiFaults, type Verdict } from './faults.ts';

export interface ProxiedSite {
  name: string;
  listenPort: number;
  upstreamPort: number;
  /** PEM files: the site's CA, and the pair used both to serve and as the client identity upstream. */
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface SiteCounters {
  forwarded: number;
  errors: number;
  drops: number;
  blackholed: number;
  delayed: number;
  /**
   * Requests forwarded, by the client's User-Agent (Pivot's processes each name themselves: see
   * common/k8s.ts), so that a benchmark can tell what each part of Pivot asked of the site.
   */
  forwardedBy: Record<string, number>;
}

export class SiteProxy {
  faults: ApiFaults = { ...NO_FAULTS };
  readonly counters: SiteCounters = {
    forwarded: 0,
    errors: 0,
    drops: 0,
    blackholed: 0,
    delayed: 0,
    forwardedBy: {},
  };
  private readonly held = new Set<Socket>();
  /** Upstream as the site's admin (a request without credentials of its own). */
  private readonly agent: https.Agent;
  /** Upstream with the request's own credentials only: no client certificate. */
  private readonly bearerAgent: https.Agent;
  private server?: https.Server;

  constructor(
    readonly site: ProxiedSite,
    private readonly draw: () => number = Math.random,
  ) {
    this.agent = new https.Agent({
      keepAlive: true,
      ca: readFileSync(site.caFile),
      cert: readFileSync(site.certFile),
      key: readFileSync(site.keyFile),
    });
    this.bearerAgent = new https.Agent({ keepAlive: true, ca: readFileSync(site.caFile) });
  }

  private agentFor(req: http.IncomingMessage): https.Agent {
    return req.headers.authorization ? this.bearerAgent : this.agent;
  }

  async listen(host = '127.0.0.1'): Promise<void> {
    this.server = https.createServer(
      { cert: readFileSync(this.site.certFile), key: readFileSync(this.site.keyFile) },
      (req, res) => this.handle(req, res),
    );
    // exec and attach (an exec hook) upgrade to a WebSocket: faulted alike, then spliced.
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) =>
      this.handleUpgrade(req, socket, head),
    );
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.site.listenPort, host, () => resolve());
    });
  }

  /** Replaces the faults (fields not given are reset to none); lifting a blackhole cuts what it held. */
  setFaults(change: Partial<ApiFaults>): void {
    this.faults = { ...NO_FAULTS, ...change };
    if (!this.faults.blackhole) this.releaseHeld();
  }

  async close(): Promise<void> {
    this.releaseHeld();
    this.agent.destroy();
    this.bearerAgent.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private releaseHeld(): void {
    for (const s of this.held) s.destroy();
    this.held.clear();
  }

  private count(req: http.IncomingMessage): void {
    this.counters.forwarded += 1;
    // The product part of the User-Agent only (kubectl adds its version and platform).
    const agent = (req.headers['user-agent'] ?? 'unknown').split(' ')[0]!.slice(0, 64);
    this.counters.forwardedBy[agent] = (this.counters.forwardedBy[agent] ?? 0) + 1;
  }

  private verdict(req: http.IncomingMessage): Verdict {
    const v = decide(this.faults, `${req.method ?? 'GET'} ${req.url ?? '/'}`, this.draw());
    if (isFault(v) && this.faults.count !== undefined) {
      this.faults.count -= 1;
      if (this.faults.count <= 0) this.setFaults({});
    }
    return v;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const v = this.verdict(req);
    if (v.kind === 'blackhole') {
      this.counters.blackholed += 1;
      this.held.add(req.socket);
      req.socket.once('close', () => this.held.delete(req.socket));
      return;
    }
    if (v.delayMs > 0) this.counters.delayed += 1;
    setTimeout(() => {
      if (v.kind === 'drop') {
        this.counters.drops += 1;
        req.socket.destroy();
      } else if (v.kind === 'error') {
        this.counters.errors += 1;
        this.answerError(res, v.status);
      } else {
        this.count(req);
        this.forward(req, res);
      }
    }, v.delayMs);
  }

  private handleUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const v = this.verdict(req);
    if (v.kind === 'blackhole') {
      this.counters.blackholed += 1;
      this.held.add(socket);
      socket.once('close', () => this.held.delete(socket));
      return;
    }
    if (v.delayMs > 0) this.counters.delayed += 1;
    setTimeout(() => {
      if (v.kind === 'drop') {
        this.counters.drops += 1;
        socket.destroy();
        return;
      }
      if (v.kind === 'error') {
        this.counters.errors += 1;
        socket.end(`HTTP/1.1 ${v.status} Injected\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
        return;
      }
      this.count(req);
      const upstream = https.request({
        host: '127.0.0.1',
        port: this.site.upstreamPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
        // An upgraded connection leaves the pool: a fresh TLS session with the same identity.
        ca: this.agent.options.ca,
        ...(req.headers.authorization ? {} : { cert: this.agent.options.cert, key: this.agent.options.key }),
        agent: false,
      });
      upstream.on('error', () => socket.destroy());
      upstream.on('response', (answer) => {
        // Refused (e.g. 403): pass the answer on as it came.
        socket.write(
          `HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}\r\n${headerLines(answer.rawHeaders)}\r\n`,
        );
        answer.pipe(socket);
      });
      upstream.on('upgrade', (answer, upSocket, upHead) => {
        socket.write(
          `HTTP/1.1 ${answer.statusCode ?? 101} ${answer.statusMessage ?? 'Switching Protocols'}\r\n${headerLines(answer.rawHeaders)}\r\n`,
        );
        if (upHead.length > 0) socket.write(upHead);
        if (head.length > 0) upSocket.write(head);
        upSocket.on('error', () => socket.destroy());
        socket.on('close', () => upSocket.destroy());
        upSocket.on('close', () => socket.destroy());
        upSocket.pipe(socket);
        socket.pipe(upSocket);
      });
      upstream.end();
    }, v.delayMs);
  }

  /** An error as the API server words one: a Status object, and Retry-After on 429. */
  private answerError(res: http.ServerResponse, status: number): void {
    const reason = status === 429 ? 'TooManyRequests' : 'InternalError';
    const body = JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      message: `injected by the lab's API proxy (${this.site.name})`,
      reason,
      code: status,
    });
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      ...(status === 429 ? { 'retry-after': '1' } : {}),
    });
    res.end(body);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const upstream = https.request(
      {
        host: '127.0.0.1',
        port: this.site.upstreamPort,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: this.agentFor(req),
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    // The site is down, or went down mid-answer: its clients see the connection go.
    upstream.on('error', () => req.socket.destroy());
    // The client gave up (a watch closed, a timeout): stop asking on its behalf.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
}

/** Raw header pairs as HTTP/1.1 header lines, each ending in CRLF. */
function headerLines(raw: string[]): string {
  let out = '';
  for (let i = 0; i + 1 < raw.length; i += 2) out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return out;
}
