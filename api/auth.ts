/**
 * Authentication and role-based authorization.
 * - Static bearer tokens, stored only as SHA-256 digests (config `api.tokens`): a presented token
 *   is hashed and compared in constant time with every stored digest, so neither timing nor an
 *   early exit tells which one nearly matched.
 * - Optionally OIDC JWTs (config `api.oidc`), verified by `jose` against the issuer's keys (a JWKS
 *   URL or a pinned JWKS file): issuer, audience, expiry and an asymmetric signature; the roles come
 *   from the token's groups claim through `groupRoles`.
 * Roles: viewer reads; operator starts, aborts, retries and skips; approver approves; admin does all.
 * Rate limits: per principal, and per client address for requests without a valid credential.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { NextFunction, Request, Response } from 'express';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import type { ApiConfig, OidcConfig, Role } from '../config/types.ts';
import { CSRF_HEADER, csrfSatisfied, sessionCookie, type SessionStore } from './board/sessions.ts';

export interface Principal {
  name: string;
  roles: Role[];
}

/** Who a credential names (or why it is refused), and until when an OIDC token is valid. */
export interface Authentication {
  principal?: Principal;
  refusal?: string;
  expiresAtMs?: number;
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

/** JWT algorithms accepted: asymmetric only (a shared-secret JWT would make every verifier a signer). */
const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'];

/** OIDC ID or access tokens from one issuer. */
export class OidcVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly oidc: OidcConfig) {
    this.keys = oidc.jwksFile
      ? createLocalJWKSet(JSON.parse(readFileSync(oidc.jwksFile, 'utf8')) as JSONWebKeySet)
      : createRemoteJWKSet(new URL(oidc.jwksUri!), { timeoutDuration: 5000, cooldownDuration: 30_000 });
  }

  /** The principal, or why the token is refused (never the token itself). */
  async verify(token: string): Promise<Authentication> {
    try {
      const { payload } = await jwtVerify(token, this.keys, {
        issuer: this.oidc.issuer,
        audience: this.oidc.audience,
        algorithms: JWT_ALGORITHMS,
        clockTolerance: 30,
      });
      const name = payload[this.oidc.usernameClaim ?? 'sub'];
      if (typeof name !== 'string' || name === '') {
        return { refusal: `the token has no ${this.oidc.usernameClaim ?? 'sub'} claim` };
      }
      const claim = payload[this.oidc.groupsClaim ?? 'groups'];
      const groups = typeof claim === 'string' ? [claim] : Array.isArray(claim) ? claim : [];
      const roles = [
        ...new Set(groups.flatMap((g) => (typeof g === 'string' ? (this.oidc.groupRoles[g] ?? []) : []))),
      ];
      return {
        principal: { name, roles },
        ...(typeof payload.exp === 'number' ? { expiresAtMs: payload.exp * 1000 } : {}),
      };
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return { refusal: 'the token has expired' };
      if (err instanceof joseErrors.JWTClaimValidationFailed) {
        return { refusal: `the token's ${err.claim} claim is not accepted` };
      }
      if (err instanceof joseErrors.JOSEError) return { refusal: 'the token is not valid for this API' };
      throw err;
    }
  }
}

/** Who presents a bearer credential: a static token, else (when configured) an OIDC JWT. */
export class Authenticator {
  private readonly tokens: TokenVerifier;
  private readonly oidc: OidcVerifier | undefined;

  constructor(api: ApiConfig) {
    this.tokens = new TokenVerifier(api.tokens ?? []);
    this.oidc = api.oidc ? new OidcVerifier(api.oidc) : undefined;
  }

  async authenticate(token: string): Promise<Authentication> {
    const principal = this.tokens.verify(token);
    if (principal) return { principal };
    if (this.oidc && token.split('.').length === 3) return this.oidc.verify(token);
    return {};
  }
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
 * Who makes the request: a bearer credential first, else the board's session cookie. `csrf` is
 * false when a session makes a change without its CSRF token.
 */
async function identify(
  req: Request,
  auth: Authenticator,
  sessions: SessionStore | undefined,
): Promise<Authentication & { csrf?: boolean }> {
  const token = bearerToken(req);
  if (token) return auth.authenticate(token);
  const id = sessions ? sessionCookie(req) : undefined;
  const session = id ? await sessions!.get(id) : undefined;
  if (!session) return id ? { refusal: 'the session has ended: sign in again' } : {};
  return { principal: session.principal, csrf: csrfSatisfied(req, session) };
}

export interface Limits {
  /** Per principal. */
  perPrincipal: RateLimiter;
  /** Per client address, for requests without a valid credential (guessing, floods). */
  unauthenticated: RateLimiter;
}

export function createLimits(api: ApiConfig): Limits {
  return {
    perPrincipal: new RateLimiter(api.rateLimitPerMinute ?? 600),
    unauthenticated: new RateLimiter(api.unauthenticatedRateLimitPerMinute ?? 60),
  };
}

function rateLimited(res: Response, wait: number, message: string): void {
  res.status(429).set('Retry-After', String(wait)).json({ error: 'rate-limited', message });
}

/**
 * Express middleware: 401 without a valid credential (429 once its address is over the limit for
 * such requests), 403 when the principal's roles lack `permission`, 429 over its rate limit.
 */
export function requirePermission(
  auth: Authenticator,
  permission: Permission,
  limits: Limits,
  sessions?: SessionStore,
) {
  return (req: Request, res: Response, next: NextFunction): void => {
    identify(req, auth, sessions)
      .then(({ principal, refusal, csrf }) => {
        if (csrf === false) {
          res.status(403).json({
            error: 'csrf',
            message: `a change made with the board's session must carry its ${CSRF_HEADER} header: reload the board`,
          });
          return;
        }
        if (!principal) {
          const address = req.socket.remoteAddress ?? 'unknown';
          const wait = limits.unauthenticated.take(`address:${address}`);
          if (wait > 0) {
            rateLimited(
              res,
              wait,
              `${address} is over ${limits.unauthenticated.perMinute} unauthenticated requests a minute`,
            );
            return;
          }
          res
            .status(401)
            .set('WWW-Authenticate', 'Bearer realm="pivot"')
            .json({
              error: 'unauthenticated',
              message: refusal ? `${refusal}` : 'a valid bearer token is required',
            });
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
        const wait = limits.perPrincipal.take(principal.name);
        if (wait > 0) {
          rateLimited(
            res,
            wait,
            `${principal.name} is over ${limits.perPrincipal.perMinute} requests a minute`,
          );
          return;
        }
        res.locals['principal'] = principal;
        next();
      })
      .catch(next);
  };
}
