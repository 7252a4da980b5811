/**
 * Kubernetes API errors as typed activity failures: a short message with the site, the object and
 * the API's own words (not the whole HTTP exchange), retryable or not by what the status means.
 * Every site activity passes through `withSiteErrors`.
 */
import { ApplicationFailure } from '@temporalio/common';
import * as k8s from '@kubernetes/client-node';
import { FAILURE, failure } from './failures.ts';

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { kind?: string; name?: string };
}

function statusOf(err: k8s.ApiException<unknown>): StatusBody {
  const body = err.body;
  if (typeof body === 'string') {
    try {
      return JSON.parse(body) as StatusBody;
    } catch {
      return { message: body.slice(0, 300) };
    }
  }
  return body ?? {};
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

function networkCode(err: unknown): string | undefined {
  let e: unknown = err;
  while (e && typeof e === 'object') {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export function translateSiteError(site: string, activity: string, err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof k8s.ApiException) {
    const status = statusOf(err);
    const object = status.details?.kind
      ? `${status.details.kind} ${status.details.name ?? ''}`.trim()
      : `Kubernetes API (${activity})`;
    const message = `HTTP ${err.code}${status.reason ? ` ${status.reason}` : ''}: ${status.message ?? 'no message'}`;
    if (err.code === 409) {
      return failure(FAILURE.notYet, site, object, message, 'retried: another writer changed the object');
    }
    if (err.code === 401 || err.code === 403) {
      return failure(
        FAILURE.precondition,
        site,
        object,
        message,
        err.code === 401
          ? "renew the site worker's credentials for this site (its token or kubeconfig), then retry the step"
          : "grant the site worker's account the chart's site-worker role on this site (deploy/helm/pivot, files/rbac/site-worker.yaml), then retry the step",
      );
    }
    if (err.code >= 400 && err.code < 500 && err.code !== 429) {
      return failure(
        FAILURE.precondition,
        site,
        object,
        message,
        'fix the object or the permissions, then retry the step',
      );
    }
    return failure(FAILURE.unreachable, site, object, message, 'retried: the API server is busy or failing');
  }
  const code = networkCode(err);
  if (code) {
    return failure(
      FAILURE.unreachable,
      site,
      'Kubernetes API',
      `no answer (${code})`,
      'check that the site is up and reachable from its worker',
    );
  }
  return err;
}

/** Wraps every activity of a site so that its errors leave it typed and short. */
export function withSiteErrors<T extends object>(site: string, activities: T): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      async (...args: unknown[]) => {
        try {
          return await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
        } catch (err) {
          throw translateSiteError(site, name, err);
        }
      },
    ]),
  ) as T;
}
