/**
 * The audit log a bank's auditors read: every mutating request, recorded before it acts (its
 * intent, with who, from where, what and why) and after (its result, refusals included: 401, 403,
 * 409, the two-person rule, 429), in one Redis stream kept for a configured number of days (never
 * a silent cap). Nothing acts whose intent could not be written: the request is refused with 503.
 *
 * Kept apart from the witness's per-application trail (which records what the workflows did to
 * an application): this one records what people and programs asked of the API.
 */
import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from '../common/logging.ts';
import { clientAddress, type Principal } from './auth.ts';

export interface AuditRecord {
  /** The stream id: when it was written, and its order. */
  id: string;
  at: string;
  phase: 'intent' | 'result';
  requestId: string;
  /** `token:<name>`, `oidc:<issuer>#<sub>`, `hook:<source>`; absent when no credential was valid. */
  principal?: string;
  display?: string;
  address: string;
  /** `POST /v1/operations`, `POST /v1/operations/orders/approve`, ... */
  action: string;
  apps?: string[];
  site?: string;
  operationIds?: string[];
  reason?: string;
  /** Result only: the HTTP status, and the refusal's code and words. */
  status?: number;
  error?: string;
  message?: string;
}

export const DEFAULT_AUDIT_RETENTION_DAYS = 400;
const DAY_MS = 24 * 3600 * 1000;
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export class AuditLog {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    private readonly retentionDays = DEFAULT_AUDIT_RETENTION_DAYS,
    prefix = 'pivot',
    private readonly now: () => number = Date.now,
  ) {
    this.key = `${prefix}:api-audit`;
  }

  /**
   * Appends a record; what is older than the retention goes in the same command, exactly (an
   * approximate trim keeps a stream node until all of it is old, so records would outlive it).
   */
  async write(record: Omit<AuditRecord, 'id' | 'at'>): Promise<void> {
    const now = this.now();
    const minId = String(now - this.retentionDays * DAY_MS);
    const fields = ['record', JSON.stringify({ at: new Date(now).toISOString(), ...record })];
    try {
      // The record's id carries our clock's time, which the retention and `since` are measured in.
      await this.redis.xadd(this.key, 'MINID', minId, `${now}-*`, ...fields);
    } catch (err) {
      // Our clock went back past the newest record: the server's id keeps the order.
      if (!/equal or smaller/i.test(String(err))) throw err;
      await this.redis.xadd(this.key, 'MINID', minId, '*', ...fields);
    }
  }

  /** Records from `sinceMs` on, oldest first, at most `limit`, optionally only those naming `app`. */
  async read(filter: { sinceMs?: number; app?: string; limit: number }): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    let start = filter.sinceMs !== undefined ? String(filter.sinceMs) : '-';
    while (out.length < filter.limit) {
      const rows = await this.redis.xrange(this.key, start, '+', 'COUNT', 500);
      for (const [id, fields] of rows) {
        const record = { id, ...(JSON.parse(fields[1] ?? '{}') as Omit<AuditRecord, 'id'>) };
        if (!filter.app || record.apps?.includes(filter.app) || record.action.includes(`/${filter.app}/`)) {
          out.push(record);
          if (out.length >= filter.limit) break;
        }
      }
      if (rows.length < 500) break;
      start = `(${rows.at(-1)![0]}`;
    }
    return out;
  }
}

/** What a request's body says about what it is for (absent fields are left out). */
function intentOf(req: Request): Pick<AuditRecord, 'apps' | 'site' | 'reason'> {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const apps = Array.isArray(body['apps'])
    ? body['apps'].filter((a): a is string => typeof a === 'string')
    : [];
  const app = typeof req.params['id'] === 'string' ? req.params['id'] : undefined;
  return {
    ...(apps.length > 0 ? { apps } : app ? { apps: [app] } : {}),
    ...(typeof body['site'] === 'string' ? { site: body['site'] } : {}),
    ...(typeof body['reason'] === 'string' && body['reason'].trim() ? { reason: body['reason'] } : {}),
  };
}

function who(principal: Principal | undefined): Pick<AuditRecord, 'principal' | 'display'> {
  if (!principal) return {};
  return { principal: principal.name, ...(principal.display ? { display: principal.display } : {}) };
}

export const isMutating = (req: Request): boolean => MUTATING.has(req.method);

/** `POST /v1/operations/orders/approve`: the method and the path, without the query. */
const actionOf = (req: Request): string => `${req.method} ${req.originalUrl.split('?')[0]}`;

/**
 * Express middleware, first in the chain: gives each request an id (answered as X-Request-Id),
 * and records the result of every mutating request once it is answered, whatever answered it.
 */
export function auditResults(log: AuditLog, logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const requestId = randomUUID();
    res.locals['requestId'] = requestId;
    res.set('X-Request-Id', requestId);
    if (!isMutating(req)) return next();
    // The refusal's code and words, as the handler answered them.
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      if (body && typeof body === 'object') res.locals['auditAnswer'] = body;
      return json(body);
    };
    res.on('finish', () => {
      const answer = (res.locals['auditAnswer'] ?? {}) as { error?: unknown; message?: unknown };
      const operationIds = res.locals['auditOperations'] as string[] | undefined;
      log
        .write({
          phase: 'result',
          requestId,
          ...who(res.locals['principal'] as Principal | undefined),
          address: clientAddress(req),
          action: actionOf(req),
          ...intentOf(req),
          ...(operationIds?.length ? { operationIds } : {}),
          status: res.statusCode,
          ...(res.statusCode >= 400 && typeof answer.error === 'string' ? { error: answer.error } : {}),
          ...(res.statusCode >= 400 && typeof answer.message === 'string'
            ? { message: answer.message.slice(0, 500) }
            : {}),
        })
        .catch((err: unknown) => logger.error({ err, requestId }, 'could not write an audit result'));
    });
    next();
  };
}

/**
 * Records the intent of a mutating request by `principal` before it acts; false (and a 503
 * answered) when the record could not be written, in which case the request must not act.
 */
export async function recordIntent(
  log: AuditLog,
  req: Request,
  res: Response,
  principal: Principal | undefined,
): Promise<boolean> {
  try {
    await log.write({
      phase: 'intent',
      requestId: String(res.locals['requestId'] ?? randomUUID()),
      ...who(principal),
      address: clientAddress(req),
      action: actionOf(req),
      ...intentOf(req),
    });
    return true;
  } catch {
    res.status(503).json({
      error: 'audit-unavailable',
      message: 'the audit log cannot be written, so nothing was done: check the witness Redis, then retry',
    });
    return false;
  }
}
