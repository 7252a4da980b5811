/**
 * A site's refusal as the operator reads it: a refused permission names the role to grant, an
 * expired credential says to renew it, and neither is retried as if the site were busy.
 */
import { ApplicationFailure } from '@temporalio/common';
import * as k8s from '@kubernetes/client-node';
import { translateSiteError } from '../../activities/api-errors.ts';
import { FAILURE } from '../../activities/failures.ts';

function apiError(code: number, reason: string, message: string): k8s.ApiException<string> {
  return new k8s.ApiException(code, message, JSON.stringify({ kind: 'Status', reason, message, code }), {});
}

interface Detail {
  site: string;
  next: string;
}

function detail(f: ApplicationFailure): Detail {
  return f.details?.[0] as Detail;
}

function translated(err: unknown): ApplicationFailure {
  const out = translateSiteError('dc-a', 'rebindClaims', err);
  expect(out).toBeInstanceOf(ApplicationFailure);
  return out as ApplicationFailure;
}

describe('translateSiteError', () => {
  it('names the role to grant when the site refuses a permission', () => {
    const f = translated(
      apiError(
        403,
        'Forbidden',
        'persistentvolumes "pv-1" is forbidden: User "system:serviceaccount:pivot-system:pivot-site-worker" cannot patch',
      ),
    );
    expect(f.type).toBe(FAILURE.precondition);
    expect(f.message).toContain('dc-a');
    expect(f.message).toContain('HTTP 403 Forbidden');
    expect(detail(f).site).toBe('dc-a');
    expect(detail(f).next).toContain('files/rbac/site-worker.yaml');
  });

  it('says to renew the credentials when the site no longer knows them', () => {
    const f = translated(apiError(401, 'Unauthorized', 'Unauthorized'));
    expect(f.type).toBe(FAILURE.precondition);
    expect(detail(f).next).toContain('renew');
  });

  it('still retries a conflict and a busy site', () => {
    expect(translated(apiError(409, 'Conflict', 'changed')).type).toBe(FAILURE.notYet);
    expect(translated(apiError(429, 'TooManyRequests', 'slow down')).type).toBe(FAILURE.unreachable);
  });
});
