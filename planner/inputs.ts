/**
 * What `pivot check` and `pivot plan` start from: the configuration, the runbooks in its runbook
 * directory (validated as a set: a broken runbook stops the command before any site is contacted),
 * the selected applications, and a snapshot of both sites.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connectConfiguredSite, type SiteApi } from '../common/k8s.ts';
import { findConfig, loadConfig } from '../config/load.ts';
import type { PivotConfig } from '../config/types.ts';
import type { Runbook } from '../runbook/types.ts';
import {
  formatRunbookError,
  validateRunbookSet,
  validateRunbookText,
  type RunbookError,
} from '../runbook/validate.ts';
import { observe, type LiveState } from './live-state.ts';
import { witnessFor, witnessRedis } from '../witness/connect.ts';

export class RunbookSetError extends Error {
  constructor(readonly errors: RunbookError[]) {
    super(
      `${errors.length} runbook error${errors.length === 1 ? '' : 's'}:\n${errors.map(formatRunbookError).join('\n')}`,
    );
    this.name = 'RunbookSetError';
  }
}

export class SelectionError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = 'SelectionError';
  }
}

/**
 * The last runbook set read from each directory, with what it was read from: every file's name,
 * size and modification time, and the sites it was checked against. The status reads the
 * directory on every refresh; parsing and validating hundreds of runbooks each time blocked the
 * API's event loop for as long as it took, so an unchanged directory is not read again.
 */
const runbookSets = new Map<string, { key: string; runbooks: Runbook[] }>();

export function loadRunbookDir(dir: string, knownSites: string[]): Runbook[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => join(dir, f));
  const key = JSON.stringify([
    knownSites,
    files.map((f) => {
      const st = statSync(f);
      return [f, st.size, st.mtimeMs, st.ino];
    }),
  ]);
  const kept = runbookSets.get(dir);
  if (kept?.key === key) return kept.runbooks;
  const validations = files.map((file) =>
    validateRunbookText(readFileSync(file, 'utf8'), file, { knownSites }),
  );
  const errors = [...validations.flatMap((v) => v.errors), ...validateRunbookSet(validations)];
  if (errors.length > 0) throw new RunbookSetError(errors);
  const runbooks = validations.map((v) => v.runbook!);
  runbookSets.set(dir, { key, runbooks });
  return runbooks;
}

export interface Selection {
  apps?: string[];
  /** Every application whose runbook names this site (as primary or secondary). */
  site?: string;
}

export function selectRunbooks(runbooks: Runbook[], selection: Selection): Runbook[] {
  if (selection.apps?.length) {
    const unknown = selection.apps.filter((a) => !runbooks.some((r) => r.metadata.name === a));
    if (unknown.length > 0) {
      throw new SelectionError(
        `unknown application${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`,
        `known: ${runbooks.map((r) => r.metadata.name).join(', ') || 'none (no runbook in the runbook directory)'}`,
      );
    }
    return runbooks.filter((r) => selection.apps!.includes(r.metadata.name));
  }
  if (selection.site) {
    return runbooks.filter(
      (r) => r.spec.sites.primary === selection.site || r.spec.sites.secondary === selection.site,
    );
  }
  return runbooks;
}

export interface Inputs {
  config: PivotConfig;
  runbooks: Runbook[];
  live: LiveState;
}

export async function gatherInputs(configFile: string | undefined, selection: Selection): Promise<Inputs> {
  return gatherInputsFor(loadConfig(findConfig(configFile).file), selection);
}

/** The same, for a configuration already loaded (the API loads it once). */
export async function gatherInputsFor(config: PivotConfig, selection: Selection): Promise<Inputs> {
  const siteNames = config.sites.map((s) => s.name);
  if (selection.site && !siteNames.includes(selection.site)) {
    throw new SelectionError(`unknown site ${selection.site}`, `known sites: ${siteNames.join(', ')}`);
  }
  const all = loadRunbookDir(config.runbooks.dir, siteNames);
  const runbooks = selectRunbooks(all, selection);
  const namespaces = [...new Set(runbooks.flatMap((r) => r.spec.namespaces))];
  const live = await observe(
    config.sites.map((s) => siteApiFor(s)),
    namespaces,
  );
  // Every application's record, not only the selected ones': a fence on a site's networks cuts
  // off every application active there, and the plan names them.
  const witness = await readWitness(config, all);
  return { config, runbooks, live: witness ? { ...live, witness } : live };
}

/**
 * One client per configured site for the life of the process: its connections (and their TLS
 * sessions) are kept alive from one status refresh to the next instead of made anew each time.
 */
const siteApis = new WeakMap<PivotConfig['sites'][number], SiteApi>();

function siteApiFor(site: PivotConfig['sites'][number]): SiteApi {
  let api = siteApis.get(site);
  if (!api) {
    api = connectConfiguredSite(site);
    siteApis.set(site, api);
  }
  return api;
}

/** The witness's record of each application, or undefined if the witness does not answer quickly. */
async function readWitness(config: PivotConfig, runbooks: Runbook[]): Promise<LiveState['witness']> {
  const redis = witnessRedis(config, { connectTimeout: 2000, maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    const witness = witnessFor(config, redis);
    const out: NonNullable<LiveState['witness']> = {};
    // All at once: the client pipelines them on its one connection (one round trip, not one each).
    const states = await Promise.all(runbooks.map((r) => witness.state(r.metadata.name)));
    for (const [i, r] of runbooks.entries()) {
      const s = states[i]!;
      if (s.epoch > 0 || s.activeSite) out[r.metadata.name] = s;
    }
    return out;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}
