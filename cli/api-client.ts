/**
 * How the CLI reaches Pivot: over the HTTP API, as any other client does (the API authenticates,
 * authorizes, audits and rate-limits; the CLI holds no Temporal or cluster credentials).
 *
 * Where, first found wins: the context named by `--context` (or `PIVOT_CONTEXT`); `PIVOT_API_URL`;
 * the current context of the contexts file (cli/contexts.ts); else the local lab's API, with (unless
 * a token is named) the lab token of the role each command needs: viewer to read, operator to start
 * and decide, approver to approve. The token: `PIVOT_TOKEN`, `PIVOT_TOKEN_FILE`, or the context's.
 * An https API signed by a private CA: `PIVOT_CA_FILE` (`--ca-file`), or the context's `caFile`.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { AuditRecord } from '../api/audit.ts';
import { request as httpsRequest } from 'node:https';
import type { Permission } from '../api/auth.ts';
import {
  CLI_USER_AGENT,
  type AppsResponse,
  type DecisionBody,
  type DecisionResponse,
  type DrillResponse,
  type DrillsResponse,
  type DryRunResponse,
  type ErrorBody,
  type OperationRequestBody,
  type OperationResponse,
  type StartedResponse,
} from '../api/contract.ts';
import type { DecisionAction } from '../api/operations.ts';
import type { DrillScheduleSpec, DrillScheduleView } from '../api/schedules.ts';
import type { Role } from '../config/types.ts';
import { labLayout } from '../lab/layout.ts';
import type { Plan } from '../planner/plan.ts';
import {
  cliConfigPath,
  findContext,
  loadCliConfig,
  readCaFile,
  readToken,
  type CliContext,
} from './contexts.ts';

/** The API answered with an error: its status, its code and message, and what to do next. */
export class ApiError extends Error {
  readonly hint: string | undefined;

  constructor(
    readonly status: number,
    readonly body: ErrorBody,
    hint?: string,
  ) {
    super(body.message);
    this.name = 'ApiError';
    this.hint = hint ?? body.hint;
  }
}

/** The API did not answer (not running, wrong URL, network). */
export class ApiUnreachableError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
    readonly hint: string,
  ) {
    super(
      `the Pivot API at ${url} does not answer (${cause instanceof Error ? causeText(cause) : String(cause)})`,
    );
    this.name = 'ApiUnreachableError';
  }
}

const causeText = (err: Error): string =>
  err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;

/** The lab role whose token a permission uses when PIVOT_TOKEN is not set. */
const LAB_ROLE: Record<Permission, Role> = { read: 'viewer', operate: 'operator', approve: 'approver' };

export interface ApiTarget {
  url: string;
  token: (permission: Permission) => string;
  /** Where the target came from, for error hints. */
  source: 'environment' | 'context' | 'lab';
  /** The context's name, when a context named it. */
  context?: string;
  /** CA certificates (PEM) trusted for an https url instead of the system's. */
  ca?: string;
}

export function apiTarget(env: NodeJS.ProcessEnv = process.env): ApiTarget {
  const configPath = cliConfigPath(env);
  const named = env['PIVOT_CONTEXT'];
  const url = env['PIVOT_API_URL'];
  if (named || !url) {
    const config = loadCliConfig(configPath);
    const name = named ?? config.currentContext;
    if (name) return contextTarget(findContext(config, name, configPath), env);
  }
  if (url) {
    const token = readToken(env);
    if (!token) {
      throw new ApiError(401, {
        error: 'no-token',
        message: `PIVOT_API_URL is set (${url}) but no token is: neither PIVOT_TOKEN nor PIVOT_TOKEN_FILE`,
        hint: 'set PIVOT_TOKEN_FILE to the file that holds your API token (or PIVOT_TOKEN to the token)',
      });
    }
    const ca = readCaFile(env);
    return {
      url: url.replace(/\/+$/, ''),
      token: () => token,
      source: 'environment',
      ...(ca ? { ca } : {}),
    };
  }
  const layout = labLayout(env);
  if (!existsSync(layout.tokensFile)) {
    throw new ApiError(404, {
      error: 'no-api',
      message: 'no Pivot API is named and no lab is set up here',
      hint: 'name one with `pivot config set-context` (or PIVOT_API_URL and PIVOT_TOKEN_FILE), or start the lab with `pivot lab up`',
    });
  }
  const tokens = (JSON.parse(readFileSync(layout.tokensFile, 'utf8')) as { tokens: Record<Role, string> })
    .tokens;
  const token = readToken(env);
  return {
    url: `http://127.0.0.1:${layout.ports.api}`,
    token: (permission) => token ?? tokens[LAB_ROLE[permission]],
    source: 'lab',
  };
}

function contextTarget(context: CliContext, env: NodeJS.ProcessEnv): ApiTarget {
  const ca = readCaFile(env, context);
  return {
    url: context.url.replace(/\/+$/, ''),
    token: () => {
      const token = readToken(env, context);
      if (token) return token;
      throw new ApiError(401, {
        error: 'no-token',
        message: `context ${context.name} names no token I can read${context.tokenEnv ? ` (${context.tokenEnv} is not set)` : ''}`,
        hint: `set-context ${context.name} with --token-file FILE or --token-env VAR, or set PIVOT_TOKEN_FILE`,
      });
    },
    source: 'context',
    context: context.name,
    ...(ca ? { ca } : {}),
  };
}

export class PivotApi {
  constructor(private readonly target: ApiTarget = apiTarget()) {}

  get url(): string {
    return this.target.url;
  }

  apps(): Promise<AppsResponse> {
    return this.call('GET', '/v1/apps', 'read');
  }

  async plan(request: Omit<OperationRequestBody, 'dryRun'>): Promise<Plan> {
    const r = await this.call<DryRunResponse>('POST', '/v1/operations', 'operate', {
      ...request,
      dryRun: true,
    });
    return r.plan;
  }

  start(request: Omit<OperationRequestBody, 'dryRun'>): Promise<StartedResponse> {
    return this.call('POST', '/v1/operations', 'operate', request);
  }

  operation(id: string): Promise<OperationResponse> {
    return this.call('GET', `/v1/operations/${encodeURIComponent(id)}`, 'read');
  }

  async decide(id: string, action: DecisionAction, body: DecisionBody): Promise<DecisionResponse> {
    return this.call(
      'POST',
      `/v1/operations/${encodeURIComponent(id)}/${action}`,
      action === 'approve' ? 'approve' : 'operate',
      body,
    );
  }

  schedules(): Promise<{ schedules: DrillScheduleView[] }> {
    return this.call('GET', '/v1/drill-schedules', 'read');
  }

  schedule(name: string): Promise<{ schedule: DrillScheduleView }> {
    return this.call('GET', `/v1/drill-schedules/${encodeURIComponent(name)}`, 'read');
  }

  createSchedule(spec: DrillScheduleSpec): Promise<{ schedule: DrillScheduleView }> {
    return this.call('POST', '/v1/drill-schedules', 'operate', spec);
  }

  pauseSchedule(name: string, paused: boolean, reason?: string): Promise<{ schedule: DrillScheduleView }> {
    return this.call(
      'POST',
      `/v1/drill-schedules/${encodeURIComponent(name)}/${paused ? 'pause' : 'resume'}`,
      'operate',
      reason ? { reason } : {},
    );
  }

  async deleteSchedule(name: string): Promise<void> {
    await this.call('DELETE', `/v1/drill-schedules/${encodeURIComponent(name)}`, 'operate');
  }

  audit(filter: {
    app?: string | undefined;
    since?: string;
    limit?: string;
  }): Promise<{ records: AuditRecord[] }> {
    const q = new URLSearchParams();
    if (filter.app) q.set('app', filter.app);
    if (filter.since) q.set('since', filter.since);
    if (filter.limit) q.set('limit', filter.limit);
    return this.call('GET', `/v1/audit?${q.toString()}`, 'read');
  }

  drills(app?: string): Promise<DrillsResponse> {
    return this.call('GET', `/v1/drills${app ? `?app=${encodeURIComponent(app)}` : ''}`, 'read');
  }

  drill(id: string): Promise<DrillResponse> {
    return this.call('GET', `/v1/drills/${encodeURIComponent(id)}`, 'read');
  }

  drillHtml(id: string): Promise<string> {
    return this.call('GET', `/v1/drills/${encodeURIComponent(id)}/report.html`, 'read', undefined, 'text');
  }

  private async call<T>(
    method: string,
    path: string,
    permission: Permission,
    body?: unknown,
    as: 'json' | 'text' = 'json',
  ): Promise<T> {
    let res: Response;
    const url = `${this.target.url}${path}`;
    const init: ApiRequestInit = {
      method,
      headers: {
        authorization: `Bearer ${this.target.token(permission)}`,
        'user-agent': CLI_USER_AGENT,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(120_000),
    };
    try {
      const { ca } = this.target;
      res = ca && url.startsWith('https:') ? await fetchTrusting(ca, url, init) : await fetch(url, init);
    } catch (err) {
      throw new ApiUnreachableError(this.target.url, err, unreachableHint(err, this.target));
    }
    const text = await res.text();
    if (res.ok && as === 'text') return text as T;
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const error = (parsed as ErrorBody | undefined) ?? {
        error: `http-${res.status}`,
        message: text.slice(0, 200) || res.statusText,
      };
      throw new ApiError(res.status, error, hintFor(res, error, permission, this.target.source));
    }
    return parsed as T;
  }
}

/** What the CLI sends: the part of fetch's RequestInit it uses. */
interface ApiRequestInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/**
 * fetch, over node:https with `ca` as the only trusted roots (Node's fetch takes no CA of its own
 * without undici's Agent): the answer as a fetch Response.
 */
function fetchTrusting(ca: string, url: string, init: ApiRequestInit): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      { method: init.method, headers: init.headers, ca, signal: init.signal },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) {
              headers.append(name, v);
            }
          }
          const status = res.statusCode ?? 502;
          const text = Buffer.concat(chunks);
          resolve(
            new Response(text.length > 0 && status !== 204 && status !== 304 ? text : null, {
              status,
              statusText: res.statusMessage ?? '',
              headers,
            }),
          );
        });
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** The code of a failed certificate check in the error or its causes (an unknown CA, a wrong name). */
function certificateError(err: unknown, depth = 0): string | undefined {
  // By shape, not instanceof: fetch's errors can come from another realm (under jest, say).
  if (typeof err !== 'object' || err === null || depth > 4) return undefined;
  const { code, cause } = err as { code?: unknown; cause?: unknown };
  return typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_(VERIFY|GET_ISSUER)/.test(code)
    ? code
    : certificateError(cause, depth + 1);
}

function unreachableHint(err: unknown, target: ApiTarget): string {
  const certificate = certificateError(err);
  if (certificate === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return "the API's certificate is not for this host name: use a url with a name the certificate holds";
  }
  if (certificate) {
    return "the API's certificate is not trusted: name the CA that signed it with --ca-file (PIVOT_CA_FILE) or the context's caFile";
  }
  return target.source === 'lab'
    ? 'start the lab with `pivot lab up` (`pivot lab status` shows its parts)'
    : target.source === 'context'
      ? `check the url of context ${target.context} (\`pivot config get-contexts\`), and that the API is up (GET /readyz)`
      : 'check PIVOT_API_URL, and that the API is up (GET /readyz)';
}

function hintFor(res: Response, error: ErrorBody, permission: Permission, source: ApiTarget['source']) {
  if (error.hint) return error.hint;
  switch (res.status) {
    case 401:
      return source === 'lab'
        ? 'the lab token was refused: `pivot lab status --json` shows the current ones'
        : source === 'context'
          ? "check the context's token (`pivot config get-contexts`)"
          : 'check PIVOT_TOKEN or PIVOT_TOKEN_FILE';
    case 403:
      return `this needs a token with the ${permission === 'approve' ? 'approver' : permission === 'operate' ? 'operator' : 'viewer'} (or admin) role`;
    case 429:
      return `wait ${res.headers.get('retry-after') ?? 'a minute'} s and try again`;
    default:
      return undefined;
  }
}
