/**
 * The board's sign-in: a bearer credential (a static token or an OIDC JWT) is exchanged once for a
 * session, kept in Redis so that every API replica knows it, and named by an HttpOnly, SameSite
 * cookie. The browser never holds the credential itself, and a script on another origin can
 * neither read the cookie nor send a state-changing request with it: those need the session's
 * CSRF token in the X-CSRF-Token header, which only the board's own page learns.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parse as parseCookie, serialize } from 'cookie';
import type { Request } from 'express';
import type { Redis } from 'ioredis';
import type { Principal } from '../auth.ts';

export const SESSION_COOKIE = 'pivot_session';
export const CSRF_HEADER = 'x-csrf-token';
export const DEFAULT_SESSION_HOURS = 8;

export interface Session {
  principal: Principal;
  csrf: string;
  expiresAt: string;
}

/** Methods that change nothing: a session may use them without its CSRF token. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The session id is stored only as its digest: a copy of Redis signs nobody in. */
const keyOf = (id: string) => `pivot:session:${createHash('sha256').update(id).digest('hex')}`;

export class SessionStore {
  constructor(private readonly redis: Redis) {}

  /** A new session for `principal`, lasting `ttlMs`. */
  async create(principal: Principal, ttlMs: number): Promise<{ id: string; session: Session }> {
    const id = randomBytes(32).toString('base64url');
    const session: Session = {
      principal,
      csrf: randomBytes(24).toString('base64url'),
      expiresAt: new Date(Date.now() + ttlMs).toISOString(),
    };
    await this.redis.set(keyOf(id), JSON.stringify(session), 'PX', Math.max(1, Math.floor(ttlMs)));
    return { id, session };
  }

  async get(id: string): Promise<Session | undefined> {
    const json = await this.redis.get(keyOf(id));
    return json ? (JSON.parse(json) as Session) : undefined;
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(keyOf(id));
  }
}

/** The session id the request's cookie names, if any. */
export function sessionCookie(req: Request): string | undefined {
  const value = parseCookie(req.get('cookie') ?? '')[SESSION_COOKIE];
  return value && /^[A-Za-z0-9_-]{20,128}$/.test(value) ? value : undefined;
}

/** Whether a request on a session may act: safe methods always; others with the session's CSRF token. */
export function csrfSatisfied(req: Request, session: Session): boolean {
  if (SAFE_METHODS.has(req.method)) return true;
  const sent = Buffer.from(req.get(CSRF_HEADER) ?? '', 'utf8');
  const want = Buffer.from(session.csrf, 'utf8');
  return sent.length === want.length && timingSafeEqual(sent, want);
}

/**
 * Whether the browser reached the API over HTTPS, so the cookie is `Secure`: the connection is TLS
 * (`api.tls`), or the ingress or mesh that terminated TLS says so in `X-Forwarded-Proto`. The header
 * is taken from anyone: a forged `https` only makes the sender's own cookie stricter.
 */
export function overHttps(req: Request): boolean {
  return req.secure || req.get('x-forwarded-proto')?.split(',')[0]?.trim().toLowerCase() === 'https';
}

/** The Set-Cookie value for a session (or, with no id, one that clears it). */
export function cookieFor(id: string | undefined, maxAgeMs: number, secure: boolean): string {
  return serialize(SESSION_COOKIE, id ?? '', {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    maxAge: id ? Math.floor(maxAgeMs / 1000) : 0,
    secure,
  });
}
