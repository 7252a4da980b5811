/**
 * The dashboard and the alert rules in deploy/ against what Pivot exports: every metric a query or
 * a rule names exists (in the API's registry, or among the operation metrics the workflows emit
 * through the control worker), the rules pass `promtool check rules`, and their unit tests
 * (deploy/prometheus/tests/) pass `promtool test rules`: each alert fires on its input and not
 * before.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ApiMetrics } from '../../api/metrics.ts';
import { REPO_ROOT } from '../../lab/layout.ts';

const DEPLOY = join(REPO_ROOT, 'deploy');
const RULES = join(DEPLOY, 'prometheus');

/** Every series name Pivot exports, with the suffixes Prometheus gives counters and histograms. */
async function exported(): Promise<Set<string>> {
  const names = new Set<string>();
  const withSuffixes = (name: string, type: string) => {
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${name}${s}`);
  };
  for (const m of await new ApiMetrics().registry.getMetricsAsJSON()) withSuffixes(m.name, String(m.type));
  // The workflows' own metrics, emitted through the worker's Temporal runtime (its exporter adds
  // `_total` to counters).
  const engine = readFileSync(join(REPO_ROOT, 'workflows', 'engine.ts'), 'utf8');
  for (const [, kind, name] of engine.matchAll(/\.create(Counter|Histogram|Gauge)\(\s*'(pivot_[a-z_]+)'/g)) {
    if (kind === 'Counter') names.add(`${name}_total`);
    else withSuffixes(name!, kind!.toLowerCase());
  }
  return names;
}

const pivotNames = (expr: string) => [...expr.matchAll(/\bpivot_[a-z0-9_]+/g)].map((m) => m[0]);

function dashboardExprs(): string[] {
  const dash = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'pivot-dashboard.json'), 'utf8')) as {
    panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
  };
  return dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

function ruleExprs(): string[] {
  return readdirSync(RULES)
    .filter((f) => f.endsWith('.rules.yaml'))
    .flatMap((f) => {
      const doc = parse(readFileSync(join(RULES, f), 'utf8')) as {
        groups: Array<{ rules: Array<{ expr: string }> }>;
      };
      return doc.groups.flatMap((g) => g.rules.map((r) => r.expr));
    });
}

describe('the dashboard and the alert rules', () => {
  it('name only metrics Pivot exports', async () => {
    const names = await exported();
    const unknown = (exprs: string[]) => [...new Set(exprs.flatMap(pivotNames))].filter((n) => !names.has(n));
    const dashboard = dashboardExprs();
    const rules = ruleExprs();
    expect(dashboard.length).toBeGreaterThan(10);
    expect(rules.length).toBeGreaterThan(8);
    expect(unknown(dashboard)).toEqual([]);
    expect(unknown(rules)).toEqual([]);
    // The check sees a wrong name.
    expect(unknown(['rate(pivot_operation_total[5m])', 'pivot_replication_lag_seconds'])).toEqual([
      'pivot_operation_total',
    ]);
    // What the dashboard must show: RTO, lag against the objective, outcomes, decisions waiting,
    // operations needing attention, drills.
    const used = new Set(dashboard.flatMap(pivotNames));
    for (const name of [
      'pivot_operation_duration_seconds_bucket',
      'pivot_replication_lag_seconds',
      'pivot_rpo_objective_seconds',
      'pivot_operations_total',
      'pivot_operation_age_seconds',
      'pivot_operation_needs_attention',
      'pivot_drill_last_passed',
    ])
      expect({ name, used: used.has(name) }).toEqual({ name, used: true });
  });

  it('pass promtool: the rules load, and each alert fires on its test input', () => {
    const rules = readdirSync(RULES).filter((f) => f.endsWith('.rules.yaml'));
    const checked = execFileSync('promtool', ['check', 'rules', ...rules], { cwd: RULES, encoding: 'utf8' });
    expect(checked.match(/SUCCESS/g)?.length).toBe(rules.length);
    const tests = readdirSync(join(RULES, 'tests')).map((f) => join('tests', f));
    // promtool exits non-zero when an expected alert does not fire (or an unexpected one does).
    const tested = execFileSync('promtool', ['test', 'rules', ...tests], { cwd: RULES, encoding: 'utf8' });
    expect(tested.match(/SUCCESS/g)?.length).toBe(tests.length);
    const alerts = rules.flatMap((f) =>
      (
        parse(readFileSync(join(RULES, f), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> }
      ).groups.flatMap((g) => g.rules.map((r) => r.alert)),
    );
    const testedAlerts = tests.flatMap((f) =>
      [...readFileSync(join(RULES, f), 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]),
    );
    for (const alert of alerts)
      expect({ alert, tested: testedAlerts.includes(alert) }).toEqual({ alert, tested: true });
  });
});
