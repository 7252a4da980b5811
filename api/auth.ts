/**
 * Bearer-token authentication and role-based authorization. Tokens are stored only as SHA-256
 * digests (config `api.tokens`); a presented token is hashed and compared in constant time with
 * every stored digest, so neither timing nor an early exit tells which one nearly matched. Roles:
 * viewer reads; operator starts, aborts, retries and skips; approver approves; admin does all.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { ApiConfig, Role } from '../config/types.ts';

export interface Principal {
  name: string;
  roles: Role[];
}

/** What each permission needs: any one of the roles listed. */
export const PERMISSIONS = {
  read: ['viewer', 'operator', 'approver', 'admin'],
  operate: ['operator', 'admin'],
  approve: ['approver', 'admin'],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof PERMISSIONS;

export class TokenVerifier {
  private readonly entries: Array<{ digest: Buffer; principal: Principal }>;

  constructor(tokens: NonNullable<ApiConfig['tokens']>) {
    this.entries = tokens.map((t) => ({
      digest: Buffer.from(t.sha256, 'hex'),
      principal: { name: t.name, roles: [...t.roles] },
    }));
  }

  /** The principal a bearer token belongs to, or undefined. Compares against every entry. */
  verify(token: string): Principal | undefined {
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let found: Principal | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, digest) && !found) found = e.principal;
    }
    return found;
  }
}

export function bearerToken(req: Request): string | undefined {
  const header = req.get('authorization') ?? '';
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  return m?.[1];
}

/**
 * Requests per principal per minute (a fixed window): a stuck script or a leaked token cannot
 * flood the API. Over the limit: 429 with Retry-After.
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds to wait, or 0 when the request may go on. */
  take(principal: string): number {
    const now = this.now();
    const w = this.windows.get(principal);
    if (!w || now - w.start >= 60_000) {
      this.windows.set(principal, { start: now, count: 1 });
      return 0;
    }
    w.count += 1;
    return w.count > this.perMinute ? Math.ceil((w.start + 60_000 - now) / 1000) : 0;
  }
}

/**
 * Express middleware: 401 without a valid token, 403 when its roles lack `permission`, 429 over
 * the principal's rate limit.
 */
export function requirePermission(verifier: TokenVerifier, permission: Permission, limiter?: RateLimiter) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const token = bearerToken(req);
    const principal = token ? verifier.verify(token) : undefined;
    if (!principal) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer realm="pivot"')
        .json({ error: 'unauthenticated', message: 'a valid bearer token is required' });
      return;
    }
    const allowed: readonly Role[] = PERMISSIONS[permission];
    if (!principal.roles.some((r) => allowed.includes(r))) {
      res.status(403).json({
        error: 'forbidden',
        message: `${principal.name} may not ${permission}: it needs one of the roles ${allowed.join(', ')}`,
      });
      return;
    }
    const wait = limiter?.take(principal.name) ?? 0;
    if (wait > 0) {
      res
        .status(429)
        .set('Retry-After', String(wait))
        .json({
          error: 'rate-limited',
          message: `${principal.name} is over ${limiter!.perMinute} requests a minute`,
        });
      return;
    }
    res.locals['principal'] = principal;
    next();
  };
}
