/**
 * Alert hooks: `POST /hooks/grafana` (Grafana Alerting, version "1") and `POST /hooks/alertmanager`
 * (Alertmanager, version "4"). A delivery is authenticated first (HMAC-SHA256 of the body with a
 * timestamp and a replay window, a bearer token, or basic auth, as configured per source; secrets
 * compared in constant time and never logged), then parsed and checked, then each alert is routed
 * by its labels to the configured rules. A firing alert signals (or starts) its rule's
 * alertTrigger workflow, one per rule, which holds down, cools down and starts the operation; a
 * resolved one signals it. A storm of deliveries is therefore one workflow and one operation.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { recordIntent, type AuditLog } from './audit.ts';
import type { Principal } from './auth.ts';
import { readFileSync } from 'node:fs';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import express, { type Request, type Response } from 'express';
import type { Logger } from '../common/logging.ts';
import { matchesDigest, sha256Hex } from '../common/digest.ts';
import { CONTROL_TASK_QUEUE } from '../common/task-queues.ts';
import type { AlertRule, HookAuth, PivotConfig } from '../config/types.ts';
import type { Witness } from '../witness/witness.ts';
import type { AlertSummary, AlertTriggerInput } from '../workflows/alert.ts';
import type { ApiMetrics } from './metrics.ts';

export const HOOK_BODY_LIMIT = '256kb';
export const SIGNATURE_HEADER = 'x-grafana-alerting-signature';
const SOURCES = { grafana: '1', alertmanager: '4' } as const;
type Source = keyof typeof SOURCES;

export function alertWorkflowId(rule: string): string {
  return `pivot-alert-${rule}`;
}

class HookError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function sameSecret(a: string, b: string): boolean {
  // Digests first: equal lengths, and no early exit on the secrets themselves.
  return timingSafeEqual(Buffer.from(sha256Hex(a), 'hex'), Buffer.from(sha256Hex(b), 'hex'));
}

/** Which configured method authenticates this delivery; throws 401 when none does. */
function authenticate(
  req: Request,
  body: Buffer,
  auth: HookAuth,
  now: number,
  hmacSecret: (file: string) => string,
): { method: 'hmac' | 'bearer' | 'basic'; signature?: string } {
  const header = req.get('authorization') ?? '';
  if (auth.bearerSha256) {
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (m && matchesDigest(m[1]!, auth.bearerSha256)) return { method: 'bearer' };
  }
  if (auth.basic) {
    const m = /^Basic\s+(\S+)$/i.exec(header);
    if (m) {
      const [user, ...rest] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
      const userOk = sameSecret(user ?? '', auth.basic.username);
      const passOk = matchesDigest(rest.join(':'), auth.basic.passwordSha256);
      if (userOk && passOk) return { method: 'basic' };
    }
  }
  const signature = req.get(SIGNATURE_HEADER);
  if (auth.hmac && signature) {
    const secret = hmacSecret(auth.hmac.secretFile);
    let signed = body.toString('utf8');
    if (auth.hmac.timestampHeader) {
      const ts = Number(req.get(auth.hmac.timestampHeader));
      if (!Number.isInteger(ts))
        throw new HookError(401, 'unauthenticated', 'the signed timestamp is missing');
      if (Math.abs(now / 1000 - ts) > (auth.hmac.maxSkewSeconds ?? 300)) {
        throw new HookError(401, 'stale', 'the signed timestamp is outside the replay window');
      }
      signed = `${ts}:${signed}`;
    }
    const expected = createHmac('sha256', secret).update(signed, 'utf8').digest('hex');
    if (
      /^[0-9a-f]{64}$/i.test(signature) &&
      timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(signature, 'hex'))
    ) {
      return { method: 'hmac', signature: signature.toLowerCase() };
    }
  }
  throw new HookError(
    401,
    'unauthenticated',
    'the delivery is not authenticated (signature, token or basic auth)',
  );
}

interface Delivery {
  version: string;
  alerts: Array<{ status: 'firing' | 'resolved'; labels: Record<string, string>; fingerprint: string }>;
}

function parseDelivery(source: Source, body: Buffer): Delivery {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HookError(400, 'malformed-json', 'the body is not valid JSON');
  }
  const v = value as { version?: unknown; alerts?: unknown };
  if (typeof value !== 'object' || value === null || !Array.isArray(v.alerts)) {
    throw new HookError(400, 'invalid-request', 'alerts: a list of alerts is required');
  }
  if (v.version !== SOURCES[source]) {
    throw new HookError(400, 'invalid-request', `version: ${source} sends "${SOURCES[source]}"`);
  }
  const alerts = v.alerts.map((a: unknown, i): Delivery['alerts'][number] => {
    const alert = a as { status?: unknown; labels?: unknown; fingerprint?: unknown };
    if (alert?.status !== 'firing' && alert?.status !== 'resolved') {
      throw new HookError(400, 'invalid-request', `alerts[${i}].status: firing or resolved`);
    }
    const labels = alert.labels as Record<string, unknown> | undefined;
    if (!labels || typeof labels !== 'object' || Object.values(labels).some((x) => typeof x !== 'string')) {
      throw new HookError(400, 'invalid-request', `alerts[${i}].labels: an object of strings`);
    }
    const fingerprint =
      typeof alert.fingerprint === 'string' && alert.fingerprint
        ? alert.fingerprint
        : sha256Hex(JSON.stringify(Object.entries(labels).sort())).slice(0, 16);
    return { status: alert.status, labels: labels as Record<string, string>, fingerprint };
  });
  return { version: String(v.version), alerts };
}

export function matches(rule: AlertRule, labels: Record<string, string>): boolean {
  return Object.entries(rule.match).every(([k, v]) => labels[k] === v);
}

export interface HookDeps {
  config: PivotConfig;
  client: Client;
  witness: Witness;
  metrics: ApiMetrics;
  log: Logger;
  /** Where each delivery is recorded before it is routed (and its result, by the app). */
  audit?: AuditLog;
  now?: () => number;
}

export function createHookRouter(deps: HookDeps): express.Router {
  const router = express.Router();
  const now = deps.now ?? Date.now;
  // Read once, not per delivery (a storm is thousands): rotating the secret means restarting the API.
  const secrets = new Map<string, string>();
  const hmacSecret = (file: string): string => {
    let secret = secrets.get(file);
    if (secret === undefined) {
      secret = readFileSync(file, 'utf8').trim();
      secrets.set(file, secret);
    }
    return secret;
  };
  router.post(
    '/hooks/:source',
    express.raw({ type: () => true, limit: HOOK_BODY_LIMIT }),
    (req: Request, res: Response, next) => {
      const source = String(req.params['source']);
      handle(source, req, res).catch(next);
    },
  );

  async function handle(sourceName: string, req: Request, res: Response): Promise<void> {
    const source = sourceName as Source;
    const auth = (SOURCES as Record<string, string>)[sourceName] ? deps.config.alerts?.[source] : undefined;
    try {
      if (!auth) throw new HookError(404, 'not-found', `no ${sourceName} hook is configured`);
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const who = authenticate(req, body, auth, now(), hmacSecret);
      res.locals['principal'] = { name: `hook:${sourceName}`, roles: [] };
      if (!req.is('application/json')) {
        throw new HookError(415, 'unsupported-media-type', 'send the body as application/json');
      }
      const delivery = parseDelivery(source, body);
      // The sender is the hook source; recorded before anything is routed.
      const principal = res.locals['principal'] as Principal;
      if (deps.audit && !(await recordIntent(deps.audit, req, res, principal))) return;
      if (who.signature) {
        const windowMs = ((auth.hmac?.maxSkewSeconds ?? 300) * 2 + 60) * 1000;
        if (!(await deps.witness.firstSeen('hook-signature', who.signature, windowMs))) {
          throw new HookError(409, 'replayed', 'this signed delivery was already received');
        }
      }
      const routed: Array<{ rule: string; fingerprint: string; status: string }> = [];
      for (const alert of delivery.alerts) {
        for (const rule of deps.config.alerts?.rules ?? []) {
          if (!matches(rule, alert.labels)) continue;
          const summary: AlertSummary = { fingerprint: alert.fingerprint, labels: alert.labels, source };
          await route(rule, alert.status, summary);
          routed.push({ rule: rule.name, fingerprint: alert.fingerprint, status: alert.status });
        }
      }
      deps.metrics.delivery(source, routed.length > 0 ? 'routed' : 'unmatched');
      deps.log.info({ source, auth: who.method, alerts: delivery.alerts.length, routed }, 'alert delivery');
      res.status(202).json({ received: delivery.alerts.length, routed });
    } catch (err) {
      if (err instanceof HookError) {
        // Counted per configured source only: a caller inventing source names must not be able
        // to create metric series (nor fill the log with its names).
        if (auth) deps.metrics.delivery(sourceName, err.code);
        deps.log.warn(
          { source: auth ? sourceName : 'unknown', status: err.status, error: err.code },
          'alert delivery refused',
        );
        res.status(err.status).json({ error: err.code, message: err.message });
        return;
      }
      throw err;
    }
  }

  async function route(rule: AlertRule, status: 'firing' | 'resolved', alert: AlertSummary): Promise<void> {
    const workflowId = alertWorkflowId(rule.name);
    if (status === 'firing') {
      const input: AlertTriggerInput = { rule, alert };
      await deps.client.workflow.signalWithStart('alertTrigger', {
        taskQueue: CONTROL_TASK_QUEUE,
        workflowId,
        args: [input],
        signal: 'firing',
        signalArgs: [alert],
      });
      return;
    }
    try {
      await deps.client.workflow.getHandle(workflowId).signal('resolved', alert);
    } catch (err) {
      // Nothing holds for this rule (it ended, or never started): a resolve changes nothing.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }

  return router;
}
