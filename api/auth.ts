/**
 * Authentication and role-based authorization.
 * - Static bearer tokens, stored only as SHA-256 digests (config `api.tokens`, and `api.tokensFile`
 *   read again when it changes): a presented token is hashed and compared in constant time with
 *   every stored digest, so neither timing nor an early exit tells which one nearly matched. A
 *   token past its `expiresAt` is refused.
 * - Optionally OIDC JWTs (config `api.oidc`), verified by `jose` against the issuer's keys (a JWKS
 *   URL or a pinned JWKS file): issuer, audience, expiry and an asymmetric signature; the roles come
 *   from the token's groups claim through `groupRoles`.
 * Principals are namespaced by where they come from (`token:<name>`, `oidc:<issuer>#<sub>`): two
 * sources can never name the same principal by accident, and a person who renames themselves at
 * the identity provider is still the same principal (`sub` never changes). The audit records the
 * principal, and the two-person rule compares principals.
 * Roles: viewer reads; operator starts, aborts, retries and skips; approver approves; admin does all.
 * Rate limits: per principal, and per client address for requests without a valid credential.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import type { NextFunction, Request, Response } from 'express';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import type { ApiConfig, OidcConfig, Role, StaticToken } from '../config/types.ts';
import { TOKEN_LIST } from '../config/load.ts';
import { CSRF_HEADER, csrfSatisfied, sessionCookie, type SessionStore } from './board/sessions.ts';
import { isMutating, recordIntent, type AuditLog } from './audit.ts';

export interface Principal {
  /**
   * Who, namespaced by the source of the identity: `token:<name>` or `oidc:<issuer>#<sub>`. What
   * the audit records and the two-person rule compares.
   */
  name: string;
  /** How people call them (an OIDC token's `usernameClaim`), shown beside the principal. */
  display?: string;
  roles: Role[];
}

/** A principal as people read it: `vera (oidc:https://idp.example#248289761001)`, or just the name. */
export function describePrincipal(p: Principal): string {
  return p.display && p.display !== p.name ? `${p.display} (${p.name})` : p.name;
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

interface TokenEntry {
  digest: Buffer;
  principal: Principal;
  expiresAtMs?: number;
}

const validTokenList = new Ajv({ allErrors: true, strict: true }).compile(TOKEN_LIST);

function entriesOf(tokens: StaticToken[]): TokenEntry[] {
  return tokens.map((t) => ({
    digest: Buffer.from(t.sha256, 'hex'),
    principal: { name: `token:${t.name}`, roles: [...t.roles] },
    ...(t.expiresAt ? { expiresAtMs: Date.parse(t.expiresAt) } : {}),
  }));
}

/**
 * The static tokens: the configuration's, and those of `api.tokensFile`, which is read again
 * (at most once a second, when its size, time or inode changed) so that adding, renewing or
 * revoking a token needs no restart. A file that does not load at start stops the API; one that
 * stops loading later is refused with a warning, and the tokens read before stay.
 */
export class TokenVerifier {
  private readonly fromConfig: TokenEntry[];
  private fromFile: TokenEntry[] = [];
  private stamp = '';
  private checkedAt = -Infinity;

  constructor(
    tokens: StaticToken[],
    private readonly file?: string,
    private readonly now: () => number = Date.now,
    private readonly warn: (message: string) => void = () => undefined,
  ) {
    this.fromConfig = entriesOf(tokens);
    if (file) {
      const problem = this.reload();
      if (problem) throw new Error(`api.tokensFile ${file}: ${problem}`);
    }
  }

  /** The principal a bearer token belongs to, or why it is refused. Compares against every entry. */
  verify(token: string): Authentication {
    if (this.file && this.now() - this.checkedAt >= 1000) {
      this.checkedAt = this.now();
      const problem = this.reload();
      if (problem) this.warn(`api.tokensFile ${this.file}: ${problem}; the tokens read before stay`);
    }
    const digest = createHash('sha256').update(token, 'utf8').digest();
    let found: TokenEntry | undefined;
    for (const e of [...this.fromConfig, ...this.fromFile]) {
      if (timingSafeEqual(e.digest, digest) && !found) found = e;
    }
    if (!found) return {};
    if (found.expiresAtMs !== undefined && this.now() >= found.expiresAtMs) {
      return {
        refusal: `the token of ${found.principal.name} expired at ${new Date(found.expiresAtMs).toISOString()}: ask for a new one`,
      };
    }
    return {
      principal: found.principal,
      ...(found.expiresAtMs !== undefined ? { expiresAtMs: found.expiresAtMs } : {}),
    };
  }

  /** Reads the file again if it changed; what is wrong with it, or undefined. */
  private reload(): string | undefined {
    try {
      const st = statSync(this.file!);
      const stamp = `${st.size}:${st.mtimeMs}:${st.ino}`;
      if (stamp === this.stamp) return undefined;
      const list: unknown = parseYaml(readFileSync(this.file!, 'utf8')) ?? [];
      if (!validTokenList(list)) {
        return (validTokenList.errors ?? [])
          .map((e) => `${e.instancePath || '(list)'} ${e.message ?? 'invalid'}`)
          .join('; ');
      }
      const tokens = list as StaticToken[];
      const names = new Set(this.fromConfig.map((e) => e.principal.name));
      const repeated = tokens.filter((t) => names.has(`token:${t.name}`)).map((t) => t.name);
      if (repeated.length > 0) return `names also in api.tokens: ${repeated.join(', ')}`;
      this.fromFile = entriesOf(tokens);
      this.stamp = stamp;
      return undefined;
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
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
      if (typeof payload.sub !== 'string' || payload.sub === '')
        return { refusal: 'the token has no sub claim' };
      const shown = payload[this.oidc.usernameClaim ?? 'sub'];
      const claim = payload[this.oidc.groupsClaim ?? 'groups'];
      const groups = typeof claim === 'string' ? [claim] : Array.isArray(claim) ? claim : [];
      const roles = [
        ...new Set(groups.flatMap((g) => (typeof g === 'string' ? (this.oidc.groupRoles[g] ?? []) : []))),
      ];
      return {
        principal: {
          name: `oidc:${this.oidc.issuer}#${payload.sub}`,
          ...(typeof shown === 'string' && shown !== '' ? { display: shown } : {}),
          roles,
        },
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

  constructor(api: ApiConfig, warn?: (message: string) => void) {
    this.tokens = new TokenVerifier(api.tokens ?? [], api.tokensFile, Date.now, warn);
    this.oidc = api.oidc ? new OidcVerifier(api.oidc) : undefined;
  }

  async authenticate(token: string): Promise<Authentication> {
    const fromTokens = this.tokens.verify(token);
    if (fromTokens.principal || fromTokens.refusal) return fromTokens;
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
  private sweptAt: number;

  constructor(
    readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.sweptAt = now();
  }

  /** Seconds to wait, or 0 when the request may go on. */
  take(principal: string): number {
    const now = this.now();
    // Once a minute, forget the windows that ended: one per address that ever called would
    // otherwise grow without bound (a scan from many addresses is exactly that).
    if (now - this.sweptAt >= 60_000) {
      for (const [key, w] of this.windows) if (now - w.start >= 60_000) this.windows.delete(key);
      this.sweptAt = now;
    }
    const w = this.windows.get(principal);
    if (!w || now - w.start >= 60_000) {
      this.windows.set(principal, { start: now, count: 1 });
      return 0;
    }
    w.count += 1;
    return w.count > this.perMinute ? Math.ceil((w.start + 60_000 - now) / 1000) : 0;
  }

  /** How many callers it remembers. */
  get tracked(): number {
    return this.windows.size;
  }
}

/**
 * The address a request comes from: the socket's, or, when it comes through a proxy the
 * configuration trusts (`api.trustedProxies`, Express's `trust proxy`), the client's it forwarded.
 */
export function clientAddress(req: Request): string {
  return req.ip ?? req.socket.remoteAddress ?? 'unknown';
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
  audit?: AuditLog,
) {
  return (req: Request, res: Response, next: NextFunction): void => {
    identify(req, auth, sessions)
      .then(async ({ principal, refusal, csrf }) => {
        if (csrf === false) {
          res.status(403).json({
            error: 'csrf',
            message: `a change made with the board's session must carry its ${CSRF_HEADER} header: reload the board`,
          });
          return;
        }
        if (!principal) {
          const address = clientAddress(req);
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
        res.locals['principal'] = principal;
        const allowed: readonly Role[] = PERMISSIONS[permission];
        if (!principal.roles.some((r) => allowed.includes(r))) {
          res.status(403).json({
            error: 'forbidden',
            message: `${describePrincipal(principal)} may not ${permission}: it needs one of the roles ${allowed.join(', ')}`,
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
        // A change is recorded before it acts; one that cannot be recorded does not act.
        if (audit && isMutating(req) && !(await recordIntent(audit, req, res, principal))) return;
        next();
      })
      .catch(next);
  };
}
