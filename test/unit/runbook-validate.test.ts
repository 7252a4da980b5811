/**
 * The runbook validator as an author meets it: each mistake is reported once, at the line and
 * column where it is written, with the path of the field, what was expected and a hint; all of a
 * file's mistakes at once; and a valid file comes back with its defaults filled in.
 */
import { readFileSync } from 'node:fs';
import {
  formatRunbookError,
  validateRunbookSet,
  validateRunbookText,
  type RunbookError,
} from '../../runbook/validate.ts';

const ORDERS = readFileSync(new URL('../../runbooks/orders.yaml', import.meta.url), 'utf8');

/** A small valid runbook; tests append to `spec` (the last block) or replace a line. */
const BASE = `apiVersion: pivot.dev/v1alpha1
kind: Runbook
metadata:
  name: shop
spec:
  namespaces: [shop, shop-cache]
  sites:
    primary: dc-a
    secondary: dc-b
  objectives:
    rpo: 30s
    rto: 10m
  workloads:
    - kind: StatefulSet
      name: db
      startOrder: 1
  volumes:
    - name: data
      claim: data-db-0
      replication:
        provider: csi-addons
        volumeReplicationClass: sim-replication
`;

/** BASE with `extra` (indented as under spec) appended. */
const withSpec = (extra: string): string => `${BASE}${extra}`;

/** BASE with `from` replaced by `to` (which must occur). */
function edit(from: string, to: string, text = BASE): string {
  if (!text.includes(from)) throw new Error(`test bug: ${from} not in the runbook`);
  return text.replace(from, to);
}

/** Line and column of the `occurrence`th `needle` in `text` (1-based, as the validator reports). */
function pos(text: string, needle: string, occurrence = 1): { line: number; column: number } {
  let at = -1;
  for (let i = 0; i < occurrence; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`test bug: ${needle} #${occurrence} not in the runbook`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

/** Line and column just after the `occurrence`th `prefix`: where the value that follows starts. */
function posAfter(text: string, prefix: string, occurrence = 1): { line: number; column: number } {
  const at = pos(text, prefix, occurrence);
  return { line: at.line, column: at.column + prefix.length };
}

function errorsOf(text: string, knownSites?: string[]): RunbookError[] {
  const result = validateRunbookText(text, 'shop.yaml', knownSites ? { knownSites } : {});
  if (result.errors.length > 0) expect(result.runbook).toBeUndefined();
  return result.errors;
}

/** The single error of `text`. */
function onlyError(text: string, knownSites?: string[]): RunbookError {
  const errors = errorsOf(text, knownSites);
  expect(errors.map(formatRunbookError)).toHaveLength(1);
  return errors[0]!;
}

describe('a valid runbook', () => {
  it('comes back with its defaults filled in', () => {
    const { runbook, errors } = validateRunbookText(BASE, 'shop.yaml');
    expect(errors).toEqual([]);
    expect(runbook?.spec.workloads[0]?.namespace).toBe('shop');
    expect(runbook?.spec.volumes[0]?.namespace).toBe('shop');
    expect(runbook?.spec).toMatchObject({
      traffic: [],
      hooks: [],
      healthChecks: [],
      approval: {
        failover: 'required',
        switchover: 'none',
        reprotect: 'none',
        failback: 'none',
        drill: 'none',
      },
      priority: { tier: 100, dependsOn: [] },
    });
  });

  it('keeps what the author wrote over the defaults', () => {
    const text = withSpec(`  approval: { failover: none, drill: required }
  priority: { tier: 3, dependsOn: [payments] }
  hooks:
    - name: warm
      phase: post-failover
      exec: { namespace: shop-cache, selector: { app: cache }, command: [warm] }
      timeout: 1m
      onError: continue
`);
    const { runbook, errors } = validateRunbookText(text, 'shop.yaml');
    expect(errors).toEqual([]);
    expect(runbook?.spec.approval).toMatchObject({ failover: 'none', drill: 'required', switchover: 'none' });
    expect(runbook?.spec.priority).toEqual({ tier: 3, dependsOn: ['payments'] });
    expect(runbook?.spec.hooks[0]?.exec?.namespace).toBe('shop-cache');
  });

  it('includes the lab sample application runbooks/orders.yaml, checked against the lab sites', () => {
    const { runbook, errors } = validateRunbookText(ORDERS, 'runbooks/orders.yaml', {
      knownSites: ['dc-a', 'dc-b'],
    });
    expect(errors).toEqual([]);
    expect(runbook?.metadata.name).toBe('orders');
    expect(runbook?.spec.workloads.map((w) => [w.kind, w.name, w.namespace, w.startOrder])).toEqual([
      ['StatefulSet', 'mysql', 'orders', 1],
      ['StatefulSet', 'redis', 'orders', 1],
      ['Deployment', 'orders-api', 'orders', 2],
    ]);
    expect(runbook?.spec.volumes[0]).toMatchObject({
      selector: { matchLabels: { 'app.kubernetes.io/part-of': 'orders' } },
      replication: { provider: 'csi-addons', volumeReplicationClass: 'sim-replication' },
    });
    expect(runbook?.spec.hooks[0]).toMatchObject({
      phase: 'post-promote',
      job: { image: 'mysql:8.4', command: ['mysqladmin', 'ping'], namespace: 'orders' },
      timeout: '2m',
      onError: 'fail',
    });
    expect(runbook?.spec).toMatchObject({
      objectives: { rpo: '30s', rto: '10m' },
      approval: { failover: 'required' },
      priority: { tier: 1, dependsOn: [] },
      healthChecks: [{ kind: 'WorkloadsReady', timeout: '3m' }],
      traffic: [{ kind: 'ServiceSelector', name: 'orders-api' }],
    });
  });
});

describe('the shape of the document (schema)', () => {
  it('points at the key of an unknown field and suggests the near miss', () => {
    const text = edit('      startOrder: 1', '      startorder: 1');
    const errors = errorsOf(text);
    // Without its startOrder the workload also misses a required field, reported at the mapping.
    expect(errors[0]).toMatchObject({
      ...pos(text, 'kind: StatefulSet'),
      path: 'spec.workloads[0].startOrder',
    });
    expect(errors[1]).toEqual({
      file: 'shop.yaml',
      ...pos(text, 'startorder'),
      path: 'spec.workloads[0].startorder',
      rule: 'schema',
      message: 'unknown field "startorder"',
      expected: 'one of the fields kind, name, namespace, startOrder',
      hint: 'did you mean "startOrder"?',
    });
  });

  it('reports unknown fields at the top and in spec', () => {
    const text = `${BASE.replace('kind: Runbook', 'kind: Runbook\nstatus: {}')}  replicas: 3\n`;
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.path, e.line, e.column])).toEqual([
      ['status', pos(text, 'status').line, 1],
      ['spec.replicas', pos(text, 'replicas').line, 3],
    ]);
  });

  it('points at a value of the wrong type, with what would fix it', () => {
    const text = edit('startOrder: 1', 'startOrder: "1"');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, '"1"'),
      path: 'spec.workloads[0].startOrder',
      message: 'found the string "1"',
      expected: 'a whole number',
      hint: 'write the number without quotes',
    });
  });

  it('reports a missing field at the mapping that should hold it, with the path of the field', () => {
    const text = edit('    rto: 10m\n', '');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'rpo: 30s'),
      path: 'spec.objectives.rto',
      message: 'missing required field `rto`',
      expected: expect.stringContaining('a duration') as string,
    });
  });

  it('points at the key of an empty field', () => {
    const text = edit('  objectives:\n    rpo: 30s\n    rto: 10m\n', '  objectives:\n');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'objectives'),
      path: 'spec.objectives',
      message: 'found nothing',
      expected: 'a mapping',
    });
  });

  it('reports a value outside a closed set, with the near miss', () => {
    const text = edit('kind: StatefulSet', 'kind: Statefulset');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'Statefulset'),
      path: 'spec.workloads[0].kind',
      message: 'unknown value "Statefulset"',
      expected: 'one of "StatefulSet" or "Deployment"',
      hint: 'did you mean "StatefulSet"?',
    });
  });

  it('requires the apiVersion and kind of a runbook', () => {
    const text = edit('pivot.dev/v1alpha1', 'pivot.dev/v1');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'pivot.dev/v1'),
      path: 'apiVersion',
      expected: '"pivot.dev/v1alpha1"',
    });
  });

  it('requires metadata.name to be a DNS-1123 label', () => {
    const text = edit('name: shop', 'name: Shop_1');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'Shop_1'),
      path: 'metadata.name',
      message: 'invalid value "Shop_1"',
      expected: expect.stringContaining('DNS-1123 label') as string,
    });
    const long = edit('name: shop', `name: ${'a'.repeat(64)}`);
    expect(onlyError(long)).toMatchObject({ path: 'metadata.name', expected: 'at most 63 characters' });
  });

  it('requires durations to be written as durations', () => {
    const text = edit('rto: 10m', 'rto: 10 minutes');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, '10 minutes'),
      path: 'spec.objectives.rto',
      expected: expect.stringContaining('a duration') as string,
    });
    const bare = edit('rto: 10m', 'rto: 600');
    expect(onlyError(bare)).toMatchObject({
      path: 'spec.objectives.rto',
      hint: 'add a unit, such as "600s"',
    });
  });

  it('requires at least one workload and one namespace, each namespace once', () => {
    const text = edit('namespaces: [shop, shop-cache]', 'namespaces: [shop, shop]');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'shop]'),
      path: 'spec.namespaces[1]',
      message: '"shop" is listed twice',
    });
    const none = edit(
      '  workloads:\n    - kind: StatefulSet\n      name: db\n      startOrder: 1\n',
      '  workloads: []\n',
    );
    expect(onlyError(none)).toMatchObject({
      ...pos(none, '[]'),
      path: 'spec.workloads',
      message: 'empty list',
    });
  });

  it('wants exactly one of claim and selector in a volume group', () => {
    const both = edit(
      '      claim: data-db-0\n',
      '      claim: data-db-0\n      selector: { matchLabels: { app: db } }\n',
    );
    expect(onlyError(both)).toMatchObject({
      ...pos(both, 'selector'),
      path: 'spec.volumes[0].selector',
      message: '`claim` and `selector` are both given',
      expected: 'exactly one of `claim`, `selector`',
    });
    const neither = edit('      claim: data-db-0\n', '');
    expect(onlyError(neither)).toMatchObject({
      ...pos(neither, 'name: data'),
      path: 'spec.volumes[0]',
      message: 'none of `claim`, `selector` is given',
    });
  });

  it('refuses an empty selector, which would select every claim of the namespace', () => {
    const text = edit('      claim: data-db-0\n', '      selector: { matchLabels: {} }\n');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, '{} }'),
      path: 'spec.volumes[0].selector.matchLabels',
      message: 'empty mapping',
    });
  });

  const hook = (body: string) =>
    withSpec(`  hooks:
    - name: check
      phase: post-promote
${body}      timeout: 1m
      onError: fail
`);

  it('wants exactly one of job and exec in a hook', () => {
    const both = hook(
      '      job: { image: busybox, command: [ping] }\n      exec: { pod: db-0, command: [ping] }\n',
    );
    expect(onlyError(both)).toMatchObject({
      ...pos(both, 'exec'),
      path: 'spec.hooks[0].exec',
      expected: 'exactly one of `job`, `exec`',
    });
    const neither = hook('');
    expect(onlyError(neither)).toMatchObject({ ...pos(neither, 'name: check'), path: 'spec.hooks[0]' });
  });

  it('wants exactly one of pod and selector in an exec hook', () => {
    const text = hook('      exec: { command: [ping] }\n');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, '{ command'),
      path: 'spec.hooks[0].exec',
      message: 'none of `pod`, `selector` is given',
    });
  });

  it('checks each kind of traffic target against its own fields', () => {
    const text = withSpec(`  traffic:
    - kind: ServiceSelector
      name: web
      selector: { app: web }
      port: 80
    - kind: EndpointSlice
      name: web-eps
      addresses: { dc-a: [10.0.0.1], dc-b: [10.1.0.1] }
    - kind: Ingress
      name: web
`);
    const errors = errorsOf(text);
    expect(errors.map((e) => ({ path: e.path, line: e.line, column: e.column, message: e.message }))).toEqual(
      [
        { path: 'spec.traffic[0].port', ...pos(text, 'port'), message: 'unknown field "port"' },
        {
          path: 'spec.traffic[1].port',
          ...pos(text, 'kind: EndpointSlice'),
          message: 'missing required field `port`',
        },
        { path: 'spec.traffic[2].kind', ...pos(text, 'Ingress'), message: 'unknown value "Ingress"' },
      ],
    );
  });

  it('reports a mapping with a toString key where a kind belongs, instead of failing (found by fuzzing)', () => {
    const text = withSpec(`  traffic:
    - kind: { toString: [] }
      name: web
      selector: { app: web }
`);
    const errors = errorsOf(text);
    expect(errors.some((e) => e.rule === 'internal')).toBe(false);
    expect(errors.map((e) => e.path)).toContain('spec.traffic[0].kind');
  });

  it('checks each kind of health check against its own fields', () => {
    const text = withSpec(`  healthChecks:
    - name: ready
      kind: WorkloadsReady
      hook: smoke
`);
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.path, e.line, e.column])).toEqual([
      ['spec.healthChecks[0].timeout', pos(text, 'name: ready').line, pos(text, 'name: ready').column],
      ['spec.healthChecks[0].hook', pos(text, 'hook: smoke').line, pos(text, 'hook: smoke').column],
    ]);
  });

  it('reports a document that is not a mapping at 1:1', () => {
    expect(onlyError('- a\n- b\n')).toMatchObject({ line: 1, column: 1, path: '', message: 'found a list' });
  });
});

describe('the rules beyond the schema', () => {
  it('refuses durations too large to count and zero waits, but accepts an RPO of 0s', () => {
    const huge = edit('rto: 10m', 'rto: 9999999999999h');
    expect(onlyError(huge)).toMatchObject({
      ...pos(huge, '9999'),
      path: 'spec.objectives.rto',
      rule: 'duration',
    });
    const zero = edit('rto: 10m', 'rto: 0s');
    expect(onlyError(zero)).toMatchObject({
      ...posAfter(zero, 'rto: '),
      path: 'spec.objectives.rto',
      rule: 'duration',
    });
    expect(errorsOf(edit('rpo: 30s', 'rpo: 0s'))).toEqual([]);
  });

  it('reports a workload listed twice at the second, counting the default namespace', () => {
    const text = withSpec('  traffic: []\n').replace(
      '      startOrder: 1\n',
      '      startOrder: 1\n    - kind: StatefulSet\n      name: db\n      namespace: shop\n      startOrder: 2\n',
    );
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'db', 2),
      path: 'spec.workloads[1].name',
      rule: 'duplicate',
      message: 'workload StatefulSet shop/db is listed twice',
      hint: 'the first is at index 0',
    });
    // The same name in another namespace is another workload.
    expect(errorsOf(text.replace('namespace: shop\n', 'namespace: shop-cache\n'))).toEqual([]);
  });

  it('reports duplicate volume groups, claims, hooks, health checks and traffic targets', () => {
    const text = withSpec(`    - name: data
      claim: data-db-0
      replication: { provider: csi-addons, volumeReplicationClass: sim-replication }
  hooks:
    - { name: ping, phase: post-promote, exec: { pod: db-0, command: [ping] }, timeout: 1m, onError: fail }
    - { name: ping, phase: post-failover, exec: { pod: db-0, command: [ping] }, timeout: 1m, onError: fail }
  healthChecks:
    - { name: ready, kind: WorkloadsReady, timeout: 1m }
    - { name: ready, kind: Hook, hook: ping }
  traffic:
    - { kind: ServiceSelector, name: web, selector: { app: web } }
    - { kind: ServiceSelector, name: web, namespace: shop, selector: { app: web } }
`);
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.path, e.rule, e.line, e.column])).toEqual([
      ['spec.volumes[1].name', 'duplicate', ...Object.values(posAfter(text, '- name: ', 2))],
      ['spec.volumes[1].claim', 'duplicate', ...Object.values(pos(text, 'data-db-0', 2))],
      ['spec.hooks[1].name', 'duplicate', ...Object.values(pos(text, 'ping, phase: post-failover'))],
      ['spec.healthChecks[1].name', 'duplicate', ...Object.values(pos(text, 'ready', 2))],
      ['spec.traffic[1].name', 'duplicate', ...Object.values(pos(text, 'web, namespace'))],
    ]);
  });

  it('reports a Hook health check naming no hook', () => {
    const text = withSpec(`  hooks:
    - { name: smoke-test, phase: post-failover, exec: { pod: db-0, command: [ping] }, timeout: 1m, onError: fail }
  healthChecks:
    - { name: smoke, kind: Hook, hook: smoke-tset }
`);
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'smoke-tset'),
      path: 'spec.healthChecks[0].hook',
      rule: 'reference',
      message: 'no hook named "smoke-tset" in spec.hooks',
      hint: 'did you mean "smoke-test"?',
    });
  });

  it('refuses a secondary site that is the primary', () => {
    const text = edit('secondary: dc-b', 'secondary: dc-a');
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'dc-a', 2),
      path: 'spec.sites.secondary',
      rule: 'reference',
    });
  });

  it('checks the sites against the configuration when it is known', () => {
    const text = edit('secondary: dc-b', 'secondary: dc-c');
    expect(errorsOf(text)).toEqual([]);
    expect(onlyError(text, ['dc-a', 'dc-b'])).toMatchObject({
      ...pos(text, 'dc-c'),
      path: 'spec.sites.secondary',
      message: 'unknown site "dc-c"',
      expected: 'a site of the configuration: "dc-a" or "dc-b"',
    });
  });

  it('wants every namespace among spec.namespaces', () => {
    const text = withSpec(`  traffic:
    - { kind: ServiceSelector, name: web, namespace: shpo, selector: { app: web } }
  hooks:
    - { name: h, phase: post-promote, job: { image: x, command: [x], namespace: other }, timeout: 1m, onError: fail }
`).replace('      name: db\n', '      name: db\n      namespace: cache\n');
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.path, e.line, e.column, e.rule])).toEqual([
      ['spec.workloads[0].namespace', ...Object.values(posAfter(text, 'namespace: ')), 'reference'],
      ['spec.traffic[0].namespace', ...Object.values(pos(text, 'shpo')), 'reference'],
      ['spec.hooks[0].job.namespace', ...Object.values(pos(text, 'other')), 'reference'],
    ]);
    expect(errors[1]?.hint).toBe('did you mean "shop"?');
  });

  it("wants a traffic target's per-site entries to be exactly the runbook's sites", () => {
    const text = withSpec(`  traffic:
    - kind: ServiceExternalName
      name: web
      externalNames: { dc-a: web.dc-a.example, dc-c: web.dc-c.example }
`);
    const errors = errorsOf(text);
    expect(errors.map((e) => [e.path, e.message, e.line, e.column])).toEqual([
      ['spec.traffic[0].externalNames', 'no entry for site "dc-b"', ...Object.values(pos(text, '{ dc-a'))],
      [
        'spec.traffic[0].externalNames["dc-c"]',
        '"dc-c" is not a site of this runbook',
        ...Object.values(pos(text, 'dc-c:')),
      ],
    ]);
  });
});

describe('YAML itself', () => {
  it('reports a syntax error where it is', () => {
    const text = edit('  sites:\n', '  sites: [dc-a\n');
    const errors = errorsOf(text);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e.rule === 'yaml')).toBe(true);
  });

  it('reports a repeated key at the repetition', () => {
    const text = edit('kind: Runbook\n', 'kind: Runbook\nkind: Runbook\n');
    expect(onlyError(text)).toMatchObject({ ...pos(text, 'kind', 2), rule: 'yaml', path: '' });
  });

  it('refuses a second document in the file', () => {
    const text = `${BASE}---\n${BASE}`;
    expect(onlyError(text)).toMatchObject({
      ...pos(text, 'apiVersion', 2),
      rule: 'yaml',
      message: 'a second YAML document: a runbook file holds exactly one',
    });
    // A trailing `---` adds an empty document, which holds nothing to be confused by.
    expect(errorsOf(`${BASE}---\n`)).toEqual([]);
  });

  it('reports an empty file and an empty document', () => {
    expect(onlyError('')).toMatchObject({ line: 1, column: 1, message: 'the file is empty' });
    expect(onlyError('# only a comment\n')).toMatchObject({ line: 1, column: 1 });
    expect(onlyError('---\n')).toMatchObject({ line: 1, column: 1 });
  });

  it('refuses an alias bomb without expanding it', () => {
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ].join('\n');
    expect(onlyError(bomb)).toMatchObject({ rule: 'yaml', line: 1, column: 1 });
  });

  it('treats a merge key as the unknown field it is in YAML 1.2', () => {
    const text = edit('  objectives:\n', '  <<: { x: 1 }\n  objectives:\n');
    expect(onlyError(text)).toMatchObject({ ...pos(text, '<<'), path: 'spec["<<"]' });
  });
});

describe('all of a file at once', () => {
  it('reports every error, in the order of the file', () => {
    const text = edit(
      'kind: StatefulSet',
      'kind: Statefulset',
      edit(
        'rto: 10m',
        'rto: soon',
        edit('name: shop', 'name: SHOP', edit('secondary: dc-b', 'secondary: dc-a')),
      ),
    );
    const errors = errorsOf(text);
    expect(errors.map((e) => e.path)).toEqual([
      'metadata.name',
      'spec.sites.secondary',
      'spec.objectives.rto',
      'spec.workloads[0].kind',
    ]);
    expect(errors.map((e) => e.line)).toEqual([...errors.map((e) => e.line)].sort((a, b) => a - b));
  });
});

describe('a set of runbooks', () => {
  const runbook = (name: string, priority = '') =>
    edit('name: shop', `name: ${name}`, priority ? withSpec(`  priority: ${priority}\n`) : BASE);
  const validate = (files: Record<string, string>) => {
    const validations = Object.entries(files).map(([file, text]) => validateRunbookText(text, file));
    return { validations, errors: validateRunbookSet(validations) };
  };

  it('accepts dependencies on runbooks of the set in the same or a lower tier', () => {
    const { errors } = validate({
      'a.yaml': runbook('a', '{ tier: 2, dependsOn: [b, c] }'),
      'b.yaml': runbook('b', '{ tier: 1 }'),
      'c.yaml': runbook('c', '{ tier: 2, dependsOn: [b] }'),
    });
    expect(errors).toEqual([]);
  });

  it('reports a name used twice at the second runbook', () => {
    const second = runbook('a');
    const { errors } = validate({ 'one.yaml': runbook('a'), 'two.yaml': second });
    expect(errors).toEqual([
      expect.objectContaining({
        file: 'two.yaml',
        ...pos(second, 'a\n'),
        path: 'metadata.name',
        rule: 'duplicate',
        message: `runbook name "a" is already used by one.yaml:${pos(second, 'a\n').line}:${pos(second, 'a\n').column}`,
      }),
    ]);
  });

  it('reports a dependency on an unknown runbook at the dependsOn entry', () => {
    const a = runbook('a', '{ dependsOn: [b, paymnts] }');
    const { errors } = validate({
      'a.yaml': a,
      'b.yaml': runbook('b'),
      'payments.yaml': runbook('payments'),
    });
    expect(errors).toEqual([
      expect.objectContaining({
        file: 'a.yaml',
        ...pos(a, 'paymnts'),
        path: 'spec.priority.dependsOn[1]',
        rule: 'reference',
        hint: 'did you mean "payments"?',
      }),
    ]);
  });

  it('does not call a runbook unknown because it has errors of its own', () => {
    const { validations, errors } = validate({
      'a.yaml': runbook('a', '{ dependsOn: [b] }'),
      'b.yaml': edit('rto: 10m', 'rto: never', runbook('b')),
    });
    expect(validations[1]?.errors).toHaveLength(1);
    expect(errors).toEqual([]);
  });

  it('reports a dependency cycle once, with its path, at an entry of the cycle', () => {
    const a = runbook('a', '{ dependsOn: [b] }');
    const { errors } = validate({
      'a.yaml': a,
      'b.yaml': runbook('b', '{ dependsOn: [c] }'),
      'c.yaml': runbook('c', '{ dependsOn: [a] }'),
      'd.yaml': runbook('d', '{ dependsOn: [a] }'),
    });
    expect(errors).toEqual([
      expect.objectContaining({
        file: 'a.yaml',
        ...pos(a, 'b]'),
        path: 'spec.priority.dependsOn[0]',
        rule: 'dependency',
        message: 'dependency cycle: a → b → c → a',
      }),
    ]);
  });

  it('reports a runbook that depends on itself', () => {
    const a = runbook('a', '{ dependsOn: [a] }');
    expect(validate({ 'a.yaml': a }).errors).toEqual([
      expect.objectContaining({ ...pos(a, 'a]'), message: 'dependency cycle: a → a' }),
    ]);
  });

  it('reports a dependency in a later tier, which would move after the runbook that needs it', () => {
    const a = runbook('a', '{ tier: 1, dependsOn: [b] }');
    const { errors } = validate({ 'a.yaml': a, 'b.yaml': runbook('b', '{ tier: 2 }') });
    expect(errors).toEqual([
      expect.objectContaining({
        ...pos(a, 'b]'),
        path: 'spec.priority.dependsOn[0]',
        rule: 'dependency',
        message: '"b" is in tier 2, after this runbook\'s tier 1',
      }),
    ]);
  });
});

describe('formatRunbookError', () => {
  it('writes one line: file:line:col: path: message (expected X) — hint: Y', () => {
    expect(
      formatRunbookError({
        file: 'runbooks/shop.yaml',
        line: 14,
        column: 13,
        path: 'spec.workloads[0].kind',
        rule: 'schema',
        message: 'unknown value "Statefulset"',
        expected: 'one of "StatefulSet" or "Deployment"',
        hint: 'did you mean "StatefulSet"?',
      }),
    ).toBe(
      'runbooks/shop.yaml:14:13: spec.workloads[0].kind: unknown value "Statefulset" (expected one of "StatefulSet" or "Deployment") — hint: did you mean "StatefulSet"?',
    );
    expect(
      formatRunbookError({ file: 'f', line: 1, column: 1, path: '', rule: 'yaml', message: 'bad\nthing' }),
    ).toBe('f:1:1: bad thing');
  });
});

describe('robustness', () => {
  it('never throws, even when handed something that is not text', () => {
    const result = validateRunbookText(42 as unknown as string, 'x.yaml');
    expect(result.errors).toEqual([expect.objectContaining({ rule: 'internal', line: 1, column: 1 })]);
  });
});
