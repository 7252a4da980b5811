/**
 * The board's session cookie and CSRF check, without a server: which cookie names a session, which
 * requests a session may make without its CSRF token, and the cookie's flags.
 */
import type { Request } from 'express';
import {
  cookieFor,
  csrfSatisfied,
  SESSION_COOKIE,
  sessionCookie,
  type Session,
} from '../../api/board/sessions.ts';

const request = (method: string, headers: Record<string, string>): Request =>
  ({ method, get: (name: string) => headers[name.toLowerCase()] }) as unknown as Request;

const session: Session = {
  principal: { name: 'alice', roles: ['approver'] },
  csrf: 'c'.repeat(32),
  expiresAt: '2026-12-02T20:00:00.000Z',
};
const ID = 'A'.repeat(43);

describe('the board session', () => {
  it('reads its id from the cookie header among others, and nothing malformed', () => {
    expect(sessionCookie(request('GET', { cookie: `theme=dark; ${SESSION_COOKIE}=${ID}; x=1` }))).toBe(ID);
    expect(sessionCookie(request('GET', {}))).toBeUndefined();
    expect(sessionCookie(request('GET', { cookie: `${SESSION_COOKIE}=short` }))).toBeUndefined();
    expect(
      sessionCookie(request('GET', { cookie: `${SESSION_COOKIE}=${'a'.repeat(30)}%3Cscript` })),
    ).toBeUndefined();
  });

  it('lets a session read without its CSRF token, and change nothing without it', () => {
    expect(csrfSatisfied(request('GET', {}), session)).toBe(true);
    expect(csrfSatisfied(request('HEAD', {}), session)).toBe(true);
    for (const method of ['POST', 'DELETE', 'PUT', 'PATCH']) {
      expect(csrfSatisfied(request(method, {}), session)).toBe(false);
      expect(csrfSatisfied(request(method, { 'x-csrf-token': 'c'.repeat(31) }), session)).toBe(false);
      expect(csrfSatisfied(request(method, { 'x-csrf-token': 'd'.repeat(32) }), session)).toBe(false);
      expect(csrfSatisfied(request(method, { 'x-csrf-token': session.csrf }), session)).toBe(true);
    }
  });

  it('sets an HttpOnly, SameSite=Strict cookie (Secure over HTTPS), and clears it on sign-out', () => {
    const set = cookieFor(ID, 8 * 3600_000, true);
    expect(set).toContain(`${SESSION_COOKIE}=${ID}`);
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Secure/);
    expect(set).toMatch(/Max-Age=28800/);
    expect(cookieFor(ID, 1000, false)).not.toMatch(/Secure/);
    expect(cookieFor(undefined, 0, false)).toMatch(new RegExp(`^${SESSION_COOKIE}=;.*Max-Age=0`));
  });
});
