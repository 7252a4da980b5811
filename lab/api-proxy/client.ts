/** A client for the API proxy's admin API: what tests and `pivot lab` use to inject API faults. */
import type { ApiFaults } from './faults.ts';
import type { SiteCounters } from './proxy.ts';

export type ProxyReport = Record<string, { faults: ApiFaults; counters: SiteCounters }>;

export class ApiProxyClient {
  constructor(private readonly baseUrl: string) {}

  private async call(method: string, path: string, body?: unknown): Promise<ProxyReport> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const json = (await res.json()) as ProxyReport & { error?: string; details?: string[] };
    if (!res.ok)
      throw new Error(
        `api proxy: ${json.error ?? res.status}${json.details ? `: ${json.details.join('; ')}` : ''}`,
      );
    return json;
  }

  report(): Promise<ProxyReport> {
    return this.call('GET', '/v1/faults');
  }

  /** Replaces `site`'s faults; fields not given mean none. */
  setFaults(site: string, faults: Partial<ApiFaults>): Promise<ProxyReport> {
    return this.call('PUT', `/v1/faults/${encodeURIComponent(site)}`, faults);
  }

  clear(): Promise<ProxyReport> {
    return this.call('DELETE', '/v1/faults');
  }
}
