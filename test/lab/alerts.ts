/**
 * Alert deliveries as Grafana sends them, signed with the lab's HMAC secret: for the alert-hook
 * tests and the chaos suite's racing triggers.
 */
import { createHmac } from 'node:crypto';
import type { LabStatus } from '../../lab/status.ts';

export type LabHooks = NonNullable<LabStatus['api']['hooks']>;

/** A Grafana alerting delivery; `extra` makes its group key (and so its dedup key) unique. */
export function grafanaBody(
  status: 'firing' | 'resolved',
  labels: Record<string, string>,
  extra = '',
): string {
  return JSON.stringify({
    receiver: 'pivot',
    status,
    orgId: 1,
    alerts: [
      {
        status,
        labels,
        annotations: { summary: `${labels['alertname']} ${extra}` },
        startsAt: '2026-11-26T01:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://grafana.example/alerting/1/view',
        fingerprint: `fp-${Object.values(labels).join('-')}`,
      },
    ],
    groupLabels: { alertname: labels['alertname'] },
    commonLabels: labels,
    commonAnnotations: {},
    externalURL: 'http://grafana.example/',
    version: '1',
    groupKey: `{}:{alertname="${labels['alertname']}"}${extra}`,
    truncatedAlerts: 0,
    title: `[${status.toUpperCase()}] ${labels['alertname']}`,
    state: status === 'firing' ? 'alerting' : 'ok',
    message: extra,
  });
}

/** The headers of a delivery signed as Grafana signs it (timestamp and HMAC of `ts:body`). */
export function signedHeaders(
  hooks: LabHooks,
  body: string,
  ts = Math.floor(Date.now() / 1000),
  secret = hooks.hmacSecret,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-grafana-alerting-signature': createHmac('sha256', secret).update(`${ts}:${body}`).digest('hex'),
    [hooks.timestampHeader]: String(ts),
  };
}
