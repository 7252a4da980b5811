/**
 * The rules of one runbook that a JSON Schema cannot express: usable durations, unique names,
 * references (hooks, namespaces, sites) that lead somewhere. They run on the document even when
 * the schema pass failed, so that a file's problems are all reported at once; every rule therefore
 * reads the document defensively and skips what is not of the expected type (the schema pass has
 * reported that already).
 */
import { DURATION_PATTERN, parseDuration } from './duration.ts';
import type { FieldPath, RunbookFinding } from './errors.ts';
import { didYouMean, oneOfWords, plain, quote } from './wording.ts';

export interface RunbookRuleContext {
  /** The site names of the Pivot configuration; when given, spec.sites must name two of them. */
  knownSites?: readonly string[];
}

type Loose = Record<string, unknown>;
const isRecord = (v: unknown): v is Loose => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
/** The entries of a list that are mappings, with their index. */
const entries = (v: unknown): Array<[number, Loose]> =>
  Array.isArray(v) ? v.flatMap((item, i): Array<[number, Loose]> => (isRecord(item) ? [[i, item]] : [])) : [];
const field = (v: unknown, key: string): unknown => (isRecord(v) ? v[key] : undefined);

const DURATION_RE = new RegExp(DURATION_PATTERN);

function checkDurations(spec: unknown): RunbookFinding[] {
  const durations: Array<{ path: FieldPath; value: unknown; mayBeZero: boolean }> = [
    // An RPO of 0s is meaningful (synchronous replication); every other duration is a wait.
    { path: ['spec', 'objectives', 'rpo'], value: field(field(spec, 'objectives'), 'rpo'), mayBeZero: true },
    { path: ['spec', 'objectives', 'rto'], value: field(field(spec, 'objectives'), 'rto'), mayBeZero: false },
    ...entries(field(spec, 'hooks')).map(([i, h]) => ({
      path: ['spec', 'hooks', i, 'timeout'],
      value: h.timeout,
      mayBeZero: false,
    })),
    ...entries(field(spec, 'healthChecks')).map(([i, c]) => ({
      path: ['spec', 'healthChecks', i, 'timeout'],
      value: c.timeout,
      mayBeZero: false,
    })),
  ];
  const findings: RunbookFinding[] = [];
  for (const { path, value, mayBeZero } of durations) {
    // Malformed durations are the schema's to report.
    if (typeof value !== 'string' || !DURATION_RE.test(value)) continue;
    const ms = parseDuration(value);
    if (ms === undefined) {
      findings.push({
        rule: 'duration',
        path,
        anchor: 'value',
        message: `duration ${quote(value)} is too large to count in milliseconds`,
        expected: 'a duration that fits in milliseconds (under about 285,000 years)',
      });
    } else if (ms === 0 && !mayBeZero) {
      findings.push({
        rule: 'duration',
        path,
        anchor: 'value',
        message: 'a zero duration leaves no time at all',
        expected: 'a duration longer than 0s',
      });
    }
  }
  return findings;
}

/**
 * Entries of `list` with the same identity: the second and later of each are reported, at their
 * `name`, with the path of the first.
 */
function checkUnique(
  listPath: FieldPath,
  list: unknown,
  identity: (entry: Loose) => string | undefined,
  what: (entry: Loose) => string,
  expected: string,
  at = 'name',
): RunbookFinding[] {
  const seen = new Map<string, number>();
  const findings: RunbookFinding[] = [];
  for (const [i, entry] of entries(list)) {
    const id = identity(entry);
    if (id === undefined) continue;
    const first = seen.get(id);
    if (first === undefined) {
      seen.set(id, i);
      continue;
    }
    findings.push({
      rule: 'duplicate',
      path: [...listPath, i, at],
      anchor: 'value',
      message: `${what(entry)} is listed twice`,
      expected,
      hint: `the first is at index ${first}`,
    });
  }
  return findings;
}

function checkDuplicates(spec: unknown, defaultNamespace: string | undefined): RunbookFinding[] {
  const ns = (e: Loose) => text(e.namespace) ?? defaultNamespace ?? '';
  const named = (e: Loose) => text(e.name);
  return [
    ...checkUnique(
      ['spec', 'workloads'],
      field(spec, 'workloads'),
      (w) => (text(w.name) ? `${plain(w.kind)}/${ns(w)}/${text(w.name)}` : undefined),
      (w) => `workload ${plain(w.kind)} ${ns(w)}/${plain(w.name)}`,
      'each workload once',
    ),
    ...checkUnique(
      ['spec', 'volumes'],
      field(spec, 'volumes'),
      named,
      (v) => `volume group ${quote(v.name)}`,
      'a group name used once',
    ),
    // Two groups replicating one claim would drive one VolumeReplication two ways.
    ...checkUnique(
      ['spec', 'volumes'],
      field(spec, 'volumes'),
      (v) => (text(v.claim) ? `${ns(v)}/${text(v.claim)}` : undefined),
      (v) => `claim ${ns(v)}/${plain(v.claim)}`,
      'each claim in one group only',
      'claim',
    ),
    ...checkUnique(
      ['spec', 'traffic'],
      field(spec, 'traffic'),
      (t) => (text(t.name) ? `${plain(t.kind)}/${ns(t)}/${text(t.name)}` : undefined),
      (t) => `traffic target ${plain(t.kind)} ${ns(t)}/${plain(t.name)}`,
      'each traffic target once',
    ),
    ...checkUnique(
      ['spec', 'hooks'],
      field(spec, 'hooks'),
      named,
      (h) => `hook ${quote(h.name)}`,
      'a hook name used once',
    ),
    ...checkUnique(
      ['spec', 'healthChecks'],
      field(spec, 'healthChecks'),
      named,
      (c) => `health check ${quote(c.name)}`,
      'a health check name used once',
    ),
  ];
}

function checkHookReferences(spec: unknown): RunbookFinding[] {
  const hooks = entries(field(spec, 'hooks')).flatMap(([, h]) => (text(h.name) ? [text(h.name)!] : []));
  return entries(field(spec, 'healthChecks')).flatMap(([i, check]): RunbookFinding[] => {
    const hook = text(check.hook);
    if (check.kind !== 'Hook' || hook === undefined || hooks.includes(hook)) return [];
    return [
      {
        rule: 'reference',
        path: ['spec', 'healthChecks', i, 'hook'],
        anchor: 'value',
        message: `no hook named ${quote(hook)} in spec.hooks`,
        expected: hooks.length > 0 ? `one of ${oneOfWords(hooks)}` : 'the name of a hook in spec.hooks',
        hint:
          hooks.length > 0
            ? didYouMean(hook, hooks, 'add the hook to spec.hooks')
            : 'spec.hooks is empty: add the hook there',
      },
    ];
  });
}

function checkSites(spec: unknown, knownSites: readonly string[] | undefined): RunbookFinding[] {
  const sites = field(spec, 'sites');
  const primary = text(field(sites, 'primary'));
  const secondary = text(field(sites, 'secondary'));
  const findings: RunbookFinding[] = [];
  if (primary !== undefined && primary === secondary) {
    findings.push({
      rule: 'reference',
      path: ['spec', 'sites', 'secondary'],
      anchor: 'value',
      message: `the secondary site is the primary site ${quote(primary)}`,
      expected: 'a site other than the primary',
    });
  }
  if (knownSites) {
    for (const [role, site] of [
      ['primary', primary],
      ['secondary', secondary],
    ] as const) {
      if (site === undefined || knownSites.includes(site)) continue;
      findings.push({
        rule: 'reference',
        path: ['spec', 'sites', role],
        anchor: 'value',
        message: `unknown site ${quote(site)}`,
        expected: `a site of the configuration: ${oneOfWords(knownSites)}`,
        hint: didYouMean(site, knownSites),
      });
    }
  }
  return findings;
}

/** Each object that can name a namespace, with the path of that namespace. */
function namespaceFields(spec: unknown): Array<{ path: FieldPath; value: unknown }> {
  const at = (list: string, i: number, ...rest: string[]): FieldPath => [
    'spec',
    list,
    i,
    ...rest,
    'namespace',
  ];
  return [
    ...entries(field(spec, 'workloads')).map(([i, w]) => ({ path: at('workloads', i), value: w.namespace })),
    ...entries(field(spec, 'volumes')).map(([i, v]) => ({ path: at('volumes', i), value: v.namespace })),
    ...entries(field(spec, 'traffic')).map(([i, t]) => ({ path: at('traffic', i), value: t.namespace })),
    ...entries(field(spec, 'hooks')).flatMap(([i, h]) => [
      { path: at('hooks', i, 'job'), value: field(h.job, 'namespace') },
      { path: at('hooks', i, 'exec'), value: field(h.exec, 'namespace') },
    ]),
  ];
}

function checkNamespaces(spec: unknown): RunbookFinding[] {
  const declared = field(spec, 'namespaces');
  if (!Array.isArray(declared)) return [];
  const namespaces = declared.filter((n): n is string => typeof n === 'string');
  return namespaceFields(spec).flatMap(({ path, value }): RunbookFinding[] => {
    if (typeof value !== 'string' || namespaces.includes(value)) return [];
    return [
      {
        rule: 'reference',
        path,
        anchor: 'value',
        message: `namespace ${quote(value)} is not one of spec.namespaces`,
        expected: namespaces.length > 0 ? oneOfWords(namespaces) : 'a namespace listed in spec.namespaces',
        hint:
          didYouMean(value, namespaces) ??
          `add it to spec.namespaces${namespaces[0] ? `, or leave the field out for ${quote(namespaces[0])}` : ''}`,
      },
    ];
  });
}

/** The per-site mappings of traffic targets, which must name exactly the runbook's two sites. */
const PER_SITE_FIELD: Record<string, string> = {
  ServiceExternalName: 'externalNames',
  EndpointSlice: 'addresses',
  DNSEndpoint: 'targets',
};

function checkTrafficSites(spec: unknown): RunbookFinding[] {
  const sites = field(spec, 'sites');
  const own = [text(field(sites, 'primary')), text(field(sites, 'secondary'))].filter(
    (s): s is string => s !== undefined,
  );
  if (own.length < 2) return [];
  return entries(field(spec, 'traffic')).flatMap(([i, target]): RunbookFinding[] => {
    const key =
      typeof target.kind === 'string' && Object.hasOwn(PER_SITE_FIELD, target.kind)
        ? PER_SITE_FIELD[target.kind]
        : undefined;
    const perSite = key ? target[key] : undefined;
    if (!key || !isRecord(perSite)) return [];
    const path: FieldPath = ['spec', 'traffic', i, key];
    const unknown = Object.keys(perSite)
      .filter((site) => !own.includes(site))
      .map((site): RunbookFinding => ({
        rule: 'reference',
        path: [...path, site],
        anchor: 'key',
        message: `${quote(site)} is not a site of this runbook`,
        expected: oneOfWords(own),
        hint: didYouMean(site, own),
      }));
    const missing = own
      .filter((site) => !Object.hasOwn(perSite, site))
      .map((site): RunbookFinding => ({
        rule: 'reference',
        path,
        anchor: 'value',
        message: `no entry for site ${quote(site)}`,
        expected: `an entry for each of ${oneOfWords(own)}`,
        hint: 'traffic can only be moved to a site whose address is known',
      }));
    return [...unknown, ...missing];
  });
}

/** The findings of every rule of one runbook document (whatever its shape). */
export function ruleFindings(document: unknown, context: RunbookRuleContext = {}): RunbookFinding[] {
  const spec = field(document, 'spec');
  const namespaces = field(spec, 'namespaces');
  const defaultNamespace = Array.isArray(namespaces) ? text(namespaces[0]) : undefined;
  return [
    ...checkDurations(spec),
    ...checkDuplicates(spec, defaultNamespace),
    ...checkHookReferences(spec),
    ...checkSites(spec, context.knownSites),
    ...checkNamespaces(spec),
    ...checkTrafficSites(spec),
  ];
}
