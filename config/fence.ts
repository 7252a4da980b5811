/** How to fence a site's clients at the storage, from the configuration (input of a failover). */
import type { NetworkFenceSettings, PivotConfig } from './types.ts';

export interface FenceInput extends NetworkFenceSettings {
  /** The fenced site's client networks. */
  cidrs: string[];
  /**
   * The other applications active on the fenced site, which a fence on its networks would cut off
   * from their storage too (named in the approval and the report).
   */
  cutsOff?: string[];
}

/** `from`'s client networks, and the NetworkFence settings of `to`, whose cluster creates the fence. */
export function fenceFor(config: Pick<PivotConfig, 'sites'>, from: string, to: string): FenceInput {
  const settings = config.sites.find((s) => s.name === to)?.networkFence ?? {};
  return { cidrs: config.sites.find((s) => s.name === from)?.clientCidrs ?? [], ...settings };
}
