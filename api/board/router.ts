/**
 * The status board: the page and its assets at /board (served from this folder's `static/`, with
 * a Content-Security-Policy that admits nothing from elsewhere), the sign-in that turns a bearer
 * credential into a session (board/sessions.ts), and the board's data under /v1 with the API's
 * authentication: a JSON snapshot and a stream of server-sent events.
 */
import { readFileSync } from 'node:fs';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ApiConfig } from '../../config/types.ts';
import type { Logger } from '../../common/logging.ts';
import {
  clientAddress,
  describePrincipal,
  PERMISSIONS,
  type Authenticator,
  type Limits,
  type Principal,
} from '../auth.ts';
import type { BoardFeed, BoardState } from './feed.ts';
import {
  cookieFor,
  csrfSatisfied,
  DEFAULT_SESSION_HOURS,
  overHttps,
  sessionCookie,
  type Session,
  type SessionStore,
} from './sessions.ts';

const STATIC = new URL('./static/', import.meta.url);
const ASSETS: Record<string, { type: string; body: string }> = Object.fromEntries(
  [
    ['index.html', 'html'],
    ['board.js', 'text/javascript'],
    ['board.css', 'text/css'],
  ].map(([file, type]) => [file!, { type: type!, body: readFileSync(new URL(file!, STATIC), 'utf8') }]),
);

/** Only the board's own origin: no CDN, no inline script, no framing. */
export const BOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** How often an open event stream checks that its session still holds, and says it is alive. */
const STREAM_HEARTBEAT_MS = 15_000;

export interface BoardRouterDeps {
  api: ApiConfig;
  auth: Authenticator;
  limits: Limits;
  sessions: SessionStore;
  feed: BoardFeed;
  /** The API's permission check (bearer or session), for the data routes. */
  canRead: express.RequestHandler;
  log: Logger;
}

/** What the page learns about who signed in: never the credential, only the CSRF token it must echo. */
function whoami(session: Session) {
  const may = (p: keyof typeof PERMISSIONS) =>
    session.principal.roles.some((r) => (PERMISSIONS[p] as readonly string[]).includes(r));
  return {
    name: session.principal.name,
    display: describePrincipal(session.principal),
    roles: session.principal.roles,
    may: { operate: may('operate'), approve: may('approve') },
    csrf: session.csrf,
    expiresAt: session.expiresAt,
  };
}

export function createBoardRouter(deps: BoardRouterDeps): express.Router {
  const { auth, limits, sessions, feed, log } = deps;
  const router = express.Router();
  const sessionMs = (deps.api.board?.sessionHours ?? DEFAULT_SESSION_HOURS) * 3600_000;

  const send = (file: string) => (_req: Request, res: Response) => {
    const asset = ASSETS[file]!;
    res
      .type(asset.type)
      .set({
        'Content-Security-Policy': BOARD_CSP,
        'Cache-Control': 'no-cache',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      })
      .send(asset.body);
  };
  router.get('/board', send('index.html'));
  router.get('/board/assets/board.js', send('board.js'));
  router.get('/board/assets/board.css', send('board.css'));

  const current = async (req: Request): Promise<{ id: string; session: Session } | undefined> => {
    const id = sessionCookie(req);
    const session = id ? await sessions.get(id) : undefined;
    return id && session ? { id, session } : undefined;
  };
  const route =
    (fn: (req: Request, res: Response) => Promise<void>) =>
    (req: Request, res: Response, next: NextFunction): void => {
      fn(req, res).catch(next);
    };

  router.get(
    '/board/session',
    route(async (req, res) => {
      const found = await current(req);
      if (!found) {
        res.status(401).json({ error: 'unauthenticated', message: 'sign in with a token' });
        return;
      }
      res.set('Cache-Control', 'no-store').json(whoami(found.session));
    }),
  );

  router.post(
    '/board/session',
    route(async (req, res) => {
      // JSON only: a form on another origin cannot post it without a preflight this API refuses.
      if (!req.is('application/json')) {
        res
          .status(415)
          .json({ error: 'unsupported-media-type', message: 'send the token as application/json' });
        return;
      }
      const token = (req.body as { token?: unknown } | undefined)?.token;
      const address = clientAddress(req);
      const { principal, refusal, expiresAtMs } =
        typeof token === 'string' && token.trim() !== '' && token.length < 16_384
          ? await auth.authenticate(token.trim())
          : { principal: undefined, refusal: 'give a token', expiresAtMs: undefined };
      if (!principal) {
        const wait = limits.unauthenticated.take(`address:${address}`);
        if (wait > 0) {
          res
            .status(429)
            .set('Retry-After', String(wait))
            .json({
              error: 'rate-limited',
              message: `${address} is over ${limits.unauthenticated.perMinute} failed sign-ins a minute`,
            });
          return;
        }
        log.warn({ address, refusal }, 'board sign-in refused');
        res.status(401).json({
          error: 'unauthenticated',
          message: refusal ?? 'the token is not valid for this API',
        });
        return;
      }
      if (principal.roles.length === 0) {
        res
          .status(403)
          .json({ error: 'forbidden', message: `${describePrincipal(principal)} holds no role in Pivot` });
        return;
      }
      const ttl = Math.min(sessionMs, (expiresAtMs ?? Infinity) - Date.now());
      if (ttl <= 0) {
        res.status(401).json({ error: 'unauthenticated', message: 'the token has expired' });
        return;
      }
      const { id, session } = await sessions.create(principal satisfies Principal, ttl);
      log.info({ who: principal.name, address, until: session.expiresAt }, 'board sign-in');
      res
        .status(201)
        .set('Set-Cookie', cookieFor(id, ttl, overHttps(req)))
        .set('Cache-Control', 'no-store')
        .json(whoami(session));
    }),
  );

  router.delete(
    '/board/session',
    route(async (req, res) => {
      const found = await current(req);
      if (found && !csrfSatisfied(req, found.session)) {
        res.status(403).json({ error: 'csrf', message: 'signing out needs the board’s CSRF token' });
        return;
      }
      if (found) await sessions.delete(found.id);
      res
        .set('Set-Cookie', cookieFor(undefined, 0, overHttps(req)))
        .status(204)
        .end();
    }),
  );

  router.get(
    '/v1/board',
    deps.canRead,
    route(async (_req, res) => {
      res.json((await feed.snapshot()) satisfies BoardState);
    }),
  );

  router.get('/v1/board/events', deps.canRead, (req, res) => {
    res.set({
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    res.flushHeaders();
    res.write('retry: 3000\n\n');
    const unsubscribe = feed.subscribe((state) => {
      res.write(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
    });
    const viaSession = sessionCookie(req) !== undefined && !req.get('authorization');
    const heartbeat = setInterval(() => {
      void (async () => {
        // A session that ended (signed out, expired) ends its streams too.
        if (viaSession && !(await current(req).catch(() => undefined))) {
          res.write('event: signed-out\ndata: {}\n\n');
          res.end();
          return;
        }
        res.write(': alive\n\n');
      })();
    }, STREAM_HEARTBEAT_MS);
    req.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
    });
  });

  return router;
}
