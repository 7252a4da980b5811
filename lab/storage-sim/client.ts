/** A client of the storage simulator's HTTP API (http.ts), for the CLI, the demo and the tests. */
import type { Faults, Timing, VolumeReport } from './model.ts';

export type FaultSettings = Faults & Timing;

export class StorageSimClient {
  constructor(readonly url: string) {}

  private async call<T>(path: string, init?: RequestInit): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, init);
    } catch (err) {
      throw new Error(`storage simulator at ${this.url} is not answering (is the lab up?)`, { cause: err });
    }
    const body = (await res.json()) as T & { errors?: string[] };
    if (!res.ok)
      throw new Error(`storage simulator refused ${path}: ${(body.errors ?? [res.statusText]).join('; ')}`);
    return body;
  }

  async volumes(): Promise<VolumeReport[]> {
    return (await this.call<{ volumes: VolumeReport[] }>('/v1/volumes')).volumes;
  }

  async volume(handle: string): Promise<VolumeReport> {
    const v = (await this.volumes()).find((x) => x.handle === handle);
    if (!v) throw new Error(`the storage simulator has no volume ${handle}`);
    return v;
  }

  /** Clears a volume's split-brain record once its harm was repaired (the lab's tests only). */
  acknowledgeSplitBrain(handle: string): Promise<VolumeReport> {
    return this.call<VolumeReport>(`/v1/volumes/${encodeURIComponent(handle)}/acknowledge-split-brain`, {
      method: 'POST',
    });
  }

  faults(): Promise<FaultSettings> {
    return this.call<FaultSettings>('/v1/faults');
  }

  setFaults(change: Partial<FaultSettings>): Promise<FaultSettings> {
    return this.call<FaultSettings>('/v1/faults', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(change),
    });
  }
}

export function formatVolumes(volumes: VolumeReport[]): string {
  if (volumes.length === 0) return 'no volumes';
  return volumes
    .map((v) => {
      const copies = v.copies
        .map(
          (c) =>
            `${c.site} ${c.role}${c.fenced ? ' FENCED' : ''}${c.siteUp ? '' : ' (site down)'} seq ${c.seq}`,
        )
        .join('  |  ');
      const flags = [
        v.replicated ? `lag ${v.lagMs === undefined ? '-' : `${v.lagMs} ms`}` : 'local clone',
        ...v.copies
          .filter((c) => c.writesNotOnPrimary > 0)
          .map((c) => `${c.writesNotOnPrimary} writes on ${c.site} not on primary`),
        ...v.copies.filter((c) => c.needsResync).map((c) => `${c.site} needs resync`),
        ...(v.splitBrain ? [`SPLIT BRAIN (${v.splitBrainPeriods} periods)`] : []),
      ];
      return `${v.origin.namespace ?? '-'}/${v.origin.claim ?? v.handle}  ${copies}  ${flags.join(', ')}`;
    })
    .join('\n');
}
