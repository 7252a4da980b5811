/**
 * Pivot's HTTP API (express), documented by api/openapi.yaml: applications, operations and the
 * decisions they wait for, health and metrics. Every /v1 route is authenticated (api/auth.ts);
 * every mutating call is audited in the witness with who, what, when and why. Bodies are JSON,
 * at most 64 KiB.
 */
import type { Client } from '@temporalio/client';
import { matchesDigest } from '../common/digest.ts';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from '../common/logging.ts';
import type { PivotConfig } from '../config/types.ts';
import { RunbookSetError, SelectionError, type Inputs, type Selection } from '../planner/inputs.ts';
import { parseDuration } from '../runbook/duration.ts';
import type { Witness } from '../witness/witness.ts';
import { AuditLog, auditResults } from './audit.ts';
import {
  Authenticator,
  bearerToken,
  createLimits,
  PERMISSIONS,
  requirePermission,
  type Principal,
} from './auth.ts';
import {
  CLI_USER_AGENT,
  MAX_CONCURRENCY,
  type AppsResponse,
  drillSummary,
  type DecisionResponse,
  type DrillResponse,
  type DrillsResponse,
  type DryRunResponse,
  type OperationResponse,
  type StartedResponse,
} from './contract.ts';
import type { BoardFeed } from './board/feed.ts';
import { createBoardRouter } from './board/router.ts';
import { SessionStore } from './board/sessions.ts';
import { estate } from './estate.ts';
import { createHookRouter } from './hooks.ts';
import { renderDrillHtml } from './evidence-html.ts';
import type { ApiMetrics } from './metrics.ts';
import {
  createDrillSchedule,
  deleteDrillSchedule,
  describeDrillSchedule,
  listDrillSchedules,
  NoSuchScheduleError,
  ScheduleInputError,
  setDrillSchedulePaused,
  validateSchedule,
  type Blackout,
  type DrillScheduleSpec,
} from './schedules.ts';
import type { DrillReport } from '../workflows/drill.ts';
import {
  decide,
  DecisionRefusedError,
  DECISIONS,
  NoSuchOperationError,
  planRequest,
  readReport,
  REQUESTABLE,
  startOperations,
  workflowIdOf,
  type AppOperation,
} from './operations.ts';

export interface ApiDeps {
  config: PivotConfig;
  client: Client;
  witness: Witness;
  redis: Redis;
  gather: (selection: Selection) => Promise<Inputs>;
  /**
   * Every application's inputs for the status of the estate, shared by concurrent callers and at
   * most STATUS_AGES.maxAgeMs old (api/shared-snapshot.ts); plans and operations always gather anew.
   */
  status: () => Promise<Inputs>;
  metrics: ApiMetrics;
  /** What the status board shows (api/board/feed.ts), shared with the background status refresh. */
  feed: BoardFeed;
  log: Logger;
}

export const BODY_LIMIT = '64kb';

/**
 * How stale the status of the estate (GET /v1/apps) may be: refreshed in the background once two
 * seconds old, never served older than ten (against RPO objectives of tens of seconds and more).
 */
export const STATUS_AGES = { refreshAfterMs: 2000, maxAgeMs: 10_000 };

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const principalOf = (res: Response): Principal => res.locals['principal'] as Principal;

/** Wraps an async route so that its errors reach the error handler. */
const route =
  (fn: (req: Request, res: Response) => Promise<void>) =>
  (req: Request, res: Response, next: NextFunction): void => {
    fn(req, res).catch(next);
  };

function requireJson(req: Request): void {
  if (!req.is('application/json')) {
    throw new HttpError(415, 'unsupported-media-type', 'send the body as application/json');
  }
}

function field<T>(body: unknown, name: string, check: (v: unknown) => v is T, what: string): T | undefined {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  if (v === undefined) return undefined;
  if (!check(v)) throw new HttpError(400, 'invalid-request', `${name}: ${what}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';
const isLossAcceptance = (v: unknown): v is string =>
  v === 'unbounded' || (typeof v === 'string' && parseDuration(v) !== undefined);
/** The accepted loss in ms: "unbounded" accepts even a loss no replica sync bounds. */
const lossAcceptanceMs = (v: string): number =>
  v === 'unbounded' ? Number.MAX_SAFE_INTEGER : (parseDuration(v) ?? 0);
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
/** `{[name]: value}` when the value is given, else nothing (for optional fields under exactOptionalPropertyTypes). */
const optional = <K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
const isDrillMode = (v: unknown): v is 'clone' | 'switchover' => v === 'clone' || v === 'switchover';
const isConcurrency = (v: unknown): v is number =>
  Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_CONCURRENCY;

export function createApp(deps: ApiDeps): express.Express {
  const { config, client, witness, metrics, log } = deps;
  const auth = new Authenticator(config.api, (message) => log.warn({ file: config.api.tokensFile }, message));
  const limits = createLimits(config.api);
  const sessions = new SessionStore(deps.redis);
  const audit = new AuditLog(deps.redis, config.audit?.retentionDays);
  const can = (p: Parameters<typeof requirePermission>[1]) =>
    requirePermission(auth, p, limits, sessions, audit);
  const { feed } = deps;
  const app = express();
  app.disable('x-powered-by');
  // Only the proxies the configuration names may say who the client is (X-Forwarded-For).
  app.set('trust proxy', config.api.trustedProxies ?? false);
  app.use(auditResults(audit, log));
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const routePath = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.request(
        req.method,
        `${req.baseUrl}${routePath}`,
        res.statusCode,
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    });
    next();
  });
  // The hooks read their raw body (its signature covers the bytes), so they come before the JSON parser.
  app.use(createHookRouter({ config, client, witness, metrics, log, audit }));
  app.use(express.json({ limit: BODY_LIMIT, type: 'application/json' }));

  app.use(createBoardRouter({ api: config.api, auth, limits, sessions, feed, canRead: can('read'), log }));

  app.get('/livez', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // Anyone may ask /readyz: it says which dependency is down, never how to reach it (the
  // error, with its address, goes to the log).
  const failed = (name: string, err: unknown) => {
    log.warn({ dependency: name, err: String(err) }, 'readiness check failed');
    return { name, ok: false, error: 'does not answer' };
  };
  app.get(
    '/readyz',
    route(async (_req, res) => {
      const checks = await Promise.all([
        client.workflowService
          .getSystemInfo({})
          .then(() => ({ name: 'temporal', ok: true }))
          .catch((err: unknown) => failed('temporal', err)),
        deps.redis
          .ping()
          .then(() => ({ name: 'redis', ok: true }))
          .catch((err: unknown) => failed('redis', err)),
      ]);
      const ok = checks.every((c) => c.ok);
      res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not-ready', checks });
    }),
  );

  app.get(
    '/metrics',
    route(async (req, res) => {
      // Optionally for the scraper alone (api.metricsBearerSha256); either way a scrape only reads
      // what is already computed: the status monitor refreshes it in the background.
      const wanted = config.api.metricsBearerSha256;
      if (wanted && !matchesDigest(bearerToken(req) ?? '', wanted)) {
        res.status(401).set('WWW-Authenticate', 'Bearer realm="pivot-metrics"').json({
          error: 'unauthenticated',
          message: "/metrics needs the scraper's bearer token",
        });
        return;
      }
      res.set('Content-Type', metrics.contentType).send(await metrics.text());
    }),
  );

  app.get(
    '/v1/apps',
    can('read'),
    route(async (_req, res) => {
      res.json((await estate(deps)) satisfies AppsResponse);
    }),
  );

  app.post(
    '/v1/operations',
    can('operate'),
    route(async (req, res) => {
      requireJson(req);
      const body: unknown = req.body;
      const operation = field(body, 'operation', isString, 'a string');
      if (!operation || !(REQUESTABLE as readonly string[]).includes(operation)) {
        throw new HttpError(400, 'invalid-request', `operation: one of ${REQUESTABLE.join(', ')}`);
      }
      const reason = field(body, 'reason', isString, 'a non-empty string');
      if (!reason) throw new HttpError(400, 'invalid-request', 'reason: say why (it is recorded)');
      const apps = field(body, 'apps', isStringList, 'a list of application names') ?? [];
      const site = field(body, 'site', isString, 'a site name');
      const to = field(body, 'to', isString, 'a site name');
      const dryRun = field(body, 'dryRun', isBoolean, 'true or false') ?? false;
      const concurrency = field(
        body,
        'concurrency',
        isConcurrency,
        `an integer from 1 to ${MAX_CONCURRENCY}`,
      );
      const mode = field(body, 'mode', isDrillMode, 'clone or switchover (drills only)');
      if (mode && operation !== 'drill') throw new HttpError(400, 'invalid-request', 'mode: drills only');
      const principal = principalOf(res);
      const inputs = await deps.gather({ apps, ...(site ? { site } : {}) });
      const request = {
        operation: operation as AppOperation,
        apps,
        ...(site ? { site } : {}),
        ...(to ? { to } : {}),
        requestedBy: principal.name,
        reason,
        trigger: req.get('user-agent') === CLI_USER_AGENT ? 'cli' : 'api',
        ...(concurrency ? { concurrency } : {}),
        ...(mode ? { mode } : {}),
      };
      if (dryRun) {
        res.json({ dryRun: true, plan: planRequest(request, inputs).plan } satisfies DryRunResponse);
        return;
      }
      const { plan, started } = await startOperations(client, request, inputs);
      res.locals['auditOperations'] = started.map((s) => s.workflowId);
      if (started.length === 0) {
        throw new HttpError(409, 'refused', 'the plan refuses the operation: nothing was started', { plan });
      }
      for (const s of started) {
        metrics.started(s.type, request.trigger, s.attached);
        for (const app of s.app ? [s.app] : plan.waves.flatMap((w) => w.apps.map((a) => a.app))) {
          await witness.audit(app, {
            actor: principal.name,
            action: `api:${operation}`,
            detail: `${s.attached ? 'attached to' : 'started'} ${s.workflowId}: ${reason}`,
            epoch: (await witness.state(app)).epoch,
          });
        }
      }
      log.info({ who: principal.name, operation, apps, site, started }, 'operation requested');
      res.status(202).json({ operations: started, refused: plan.refused } satisfies StartedResponse);
    }),
  );

  app.get(
    '/v1/operations/:id',
    can('read'),
    route(async (req, res) => {
      res.json(
        (await readReport(client, workflowIdOf(String(req.params['id'])))) satisfies OperationResponse,
      );
    }),
  );

  for (const action of DECISIONS) {
    app.post(
      `/v1/operations/:id/${action}`,
      can(action === 'approve' ? 'approve' : 'operate'),
      route(async (req, res) => {
        requireJson(req);
        const body: unknown = req.body;
        const reason = field(body, 'reason', isString, 'a non-empty string');
        const step = field(body, 'step', isString, 'a step id');
        const acceptDataLoss =
          action === 'approve'
            ? field(body, 'acceptDataLoss', isLossAcceptance, 'a duration such as "2m", or "unbounded"')
            : undefined;
        const attestation =
          action === 'skip' ? field(body, 'attestation', isString, 'a non-empty string') : undefined;
        const principal = principalOf(res);
        // An attestation stands in for a storage fence: only an approver may give it.
        if (
          attestation &&
          !principal.roles.some((r) => (PERMISSIONS.approve as readonly string[]).includes(r))
        ) {
          throw new HttpError(
            403,
            'forbidden',
            `${principal.name} may not attest a fence: it needs one of the roles ${PERMISSIONS.approve.join(', ')}`,
          );
        }
        const workflowId = workflowIdOf(String(req.params['id']));
        res.locals['auditOperations'] = [workflowId];
        const report = await decide(client, workflowId, action, {
          by: principal.name,
          ...(reason ? { reason } : {}),
          ...(step ? { step } : {}),
          ...(acceptDataLoss ? { acceptDataLossMs: lossAcceptanceMs(acceptDataLoss) } : {}),
          ...(attestation ? { attestation } : {}),
        });
        const app = 'app' in report ? report.app : workflowId;
        await witness.audit(app, {
          actor: principal.name,
          action: `api:${action}`,
          detail: [
            `${workflowId}${step ? ` step ${step}` : ''}${reason ? `: ${reason}` : ''}`,
            acceptDataLoss ? `accepting a data loss of up to ${acceptDataLoss}` : '',
            attestation ? `attesting: ${attestation}` : '',
          ]
            .filter(Boolean)
            .join('; '),
          epoch: (await witness.state(app)).epoch,
        });
        res.json({ report } satisfies DecisionResponse);
      }),
    );
  }

  // Drill schedules (Temporal Schedules firing scheduledDrill).
  const auditSchedule = async (who: string, name: string, what: string, targets: string[]) => {
    for (const target of targets) {
      await witness.audit(target, {
        actor: who,
        action: `api:drill-schedule-${what}`,
        detail: name,
        epoch: (await witness.state(target)).epoch,
      });
    }
  };

  app.get(
    '/v1/drill-schedules',
    can('read'),
    route(async (_req, res) => {
      res.json({ schedules: await listDrillSchedules(client) });
    }),
  );

  app.post(
    '/v1/drill-schedules',
    can('operate'),
    route(async (req, res) => {
      requireJson(req);
      const body = (req.body ?? {}) as Record<string, unknown>;
      const spec: DrillScheduleSpec = {
        name: field(body, 'name', isString, 'a schedule name') ?? '',
        reason: field(body, 'reason', isString, 'a non-empty string') ?? '',
        ...optional('apps', field(body, 'apps', isStringList, 'a list of application names')),
        ...optional('site', field(body, 'site', isString, 'a site name')),
        ...optional('cron', field(body, 'cron', isString, 'a cron expression')),
        ...optional('every', field(body, 'every', isString, 'a duration, e.g. 6h')),
        ...optional('timezone', field(body, 'timezone', isString, 'an IANA time zone')),
        ...optional('jitter', field(body, 'jitter', isString, 'a duration, e.g. 10m')),
        ...optional('blackouts', field(body, 'blackouts', Array.isArray, 'a list of windows') as Blackout[]),
      };
      if (!spec.reason) throw new HttpError(400, 'invalid-request', 'reason: say why (it is recorded)');
      try {
        validateSchedule(spec);
      } catch (err) {
        if (err instanceof ScheduleInputError) throw new HttpError(400, 'invalid-request', err.message);
        throw err;
      }
      const inputs = await deps.gather({ ...optional('apps', spec.apps), ...optional('site', spec.site) });
      if (spec.site && !config.sites.some((x) => x.name === spec.site)) {
        throw new HttpError(404, 'unknown', `unknown site ${spec.site}`, {
          hint: `known: ${config.sites.map((x) => x.name).join(', ')}`,
        });
      }
      const principal = principalOf(res);
      await createDrillSchedule(client, spec, principal.name);
      await auditSchedule(
        principal.name,
        spec.name,
        'create',
        inputs.runbooks.map((r) => r.metadata.name),
      );
      res.status(201).json({ schedule: await describeDrillSchedule(client, spec.name) });
    }),
  );

  app.get(
    '/v1/drill-schedules/:name',
    can('read'),
    route(async (req, res) => {
      res.json({ schedule: await describeDrillSchedule(client, String(req.params['name'])) });
    }),
  );

  for (const [action, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    app.post(
      `/v1/drill-schedules/:name/${action}`,
      can('operate'),
      route(async (req, res) => {
        requireJson(req);
        const reason = field(req.body, 'reason', isString, 'a non-empty string') ?? `${action}d`;
        const principal = principalOf(res);
        const name = String(req.params['name']);
        const schedule = await setDrillSchedulePaused(
          client,
          name,
          paused,
          `${action}d by ${principal.name}: ${reason}`,
        );
        await auditSchedule(principal.name, name, action, schedule.apps ?? []);
        res.json({ schedule });
      }),
    );
  }

  app.delete(
    '/v1/drill-schedules/:name',
    can('operate'),
    route(async (req, res) => {
      const name = String(req.params['name']);
      const schedule = await describeDrillSchedule(client, name);
      await deleteDrillSchedule(client, name);
      await auditSchedule(principalOf(res).name, name, 'delete', schedule.apps ?? []);
      res.status(204).end();
    }),
  );

  // The audit log: what was asked of the API, by whom, from where, and what came of it.
  app.get(
    '/v1/audit',
    can('read'),
    route(async (req, res) => {
      const q = req.query;
      const app = typeof q['app'] === 'string' && q['app'] ? q['app'] : undefined;
      const sinceText = typeof q['since'] === 'string' ? q['since'] : undefined;
      const ago = sinceText ? parseDuration(sinceText) : undefined;
      const sinceMs = sinceText ? (ago !== undefined ? Date.now() - ago : Date.parse(sinceText)) : undefined;
      if (sinceMs !== undefined && Number.isNaN(sinceMs)) {
        throw new HttpError(400, 'invalid-request', 'since: a duration such as "24h", or an RFC 3339 time');
      }
      const limit = q['limit'] === undefined ? 1000 : Number(q['limit']);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
        throw new HttpError(400, 'invalid-request', 'limit: an integer from 1 to 10000');
      }
      const records = await audit.read({
        limit,
        ...(app ? { app } : {}),
        ...(sinceMs !== undefined ? { sinceMs } : {}),
      });
      // JSON lines for a SIEM: one record a line.
      if (q['format'] === 'jsonl') {
        res
          .type('application/x-ndjson')
          .send(records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
        return;
      }
      res.json({ records });
    }),
  );

  // Drill evidence, kept in the witness for the retention period.
  app.get(
    '/v1/drills',
    can('read'),
    route(async (req, res) => {
      const app = typeof req.query['app'] === 'string' ? req.query['app'] : undefined;
      const drills = (await witness.drills(500))
        .map((json) => JSON.parse(json) as DrillReport)
        .filter((r) => !app || r.app === app)
        .map(drillSummary);
      res.json({ drills } satisfies DrillsResponse);
    }),
  );

  const evidence = async (id: string): Promise<DrillReport> => {
    const json = await witness.drill(id);
    if (!json) {
      throw new HttpError(404, 'unknown-drill', `no evidence of drill ${id} is kept`, {
        hint: 'GET /v1/drills lists the drills still kept (`pivot drill list`)',
      });
    }
    return JSON.parse(json) as DrillReport;
  };

  app.get(
    '/v1/drills/:id',
    can('read'),
    route(async (req, res) => {
      res.json({ report: await evidence(String(req.params['id'])) } satisfies DrillResponse);
    }),
  );

  app.get(
    '/v1/drills/:id/report.html',
    can('read'),
    route(async (req, res) => {
      const html = renderDrillHtml(await evidence(String(req.params['id'])));
      res
        .type('html')
        .set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'")
        .send(html);
    }),
  );

  app.use((_req, res) => {
    res.status(404).json({ error: 'not-found', message: 'no such route' });
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    void _next;
    const e = err as { status?: number; type?: string; message?: string };
    if (err instanceof HttpError) {
      res.status(err.status).json({ error: err.code, message: err.message, ...err.extra });
    } else if (e.type === 'entity.too.large') {
      res.status(413).json({ error: 'too-large', message: 'the body is over the size limit' });
    } else if (e.type === 'entity.parse.failed') {
      // The parser takes objects and arrays only: a string or a number is JSON, just not a request.
      const raw = (err as { body?: unknown }).body;
      let parses = false;
      try {
        JSON.parse(String(raw));
        parses = typeof raw === 'string';
      } catch {
        parses = false;
      }
      res
        .status(400)
        .json(
          parses
            ? { error: 'invalid-request', message: 'the body must be a JSON object' }
            : { error: 'malformed-json', message: 'the body is not valid JSON' },
        );
    } else if (err instanceof SelectionError) {
      res.status(404).json({ error: 'unknown', message: err.message, hint: err.hint });
    } else if (err instanceof NoSuchScheduleError) {
      res.status(404).json({
        error: 'unknown-schedule',
        message: err.message,
        hint: 'GET /v1/drill-schedules lists them',
      });
    } else if (err instanceof ScheduleInputError) {
      res.status(400).json({ error: 'invalid-request', message: err.message });
    } else if (err instanceof NoSuchOperationError) {
      res.status(404).json({ error: 'unknown-operation', message: err.message });
    } else if (err instanceof DecisionRefusedError) {
      res.status(409).json({ error: 'refused', message: err.message });
    } else if (err instanceof RunbookSetError) {
      res.status(500).json({ error: 'runbooks-invalid', message: err.message });
    } else {
      log.error({ err: String(err) }, 'request failed');
      res.status(500).json({ error: 'internal', message: 'the request failed; the API log has the details' });
    }
  });
  return app;
}
