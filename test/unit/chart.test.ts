/**
 * The Helm chart (deploy/helm/pivot, docs/install.md), rendered with the default values, with
 * ci/full-values.yaml (every part on), as one site's own release and as RBAC only, then checked:
 * `helm lint --strict`; kubeconform in strict mode against Kubernetes' own schemas at the lab's
 * version (written offline from the k8s.io/kubernetes module's OpenAPI document by
 * lab/tools/kube-schemas.mjs), skipping only the prometheus-operator's two kinds, whose rules
 * promtool checks instead; the PrometheusRule carries exactly deploy/prometheus/*.rules.yaml; the
 * rendered Pivot configuration loads (config/load.ts) and every file it names is mounted in each
 * pod that reads it; the values schema refuses bad values; RBAC has no cluster-admin and no
 * wildcard; every container runs as non-root on a read-only root file system.
 *
 * helm, kubeconform and the schemas come from lab/tools/provision.sh (npm test's pretest runs it):
 * missing, the suite fails rather than skips.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1PolicyRule,
} from '@kubernetes/client-node';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../../config/load.ts';
import type { PivotConfig } from '../../config/types.ts';
import { REPO_ROOT } from '../../lab/layout.ts';
import { pinnedVersions } from '../../lab/tools.ts';

const CHART = join(REPO_ROOT, 'deploy', 'helm', 'pivot');
const RULES = join(REPO_ROOT, 'deploy', 'prometheus');
const BIN =
  process.env['PIVOT_TOOLS_BIN'] ??
  join(process.env['PIVOT_TOOLS_DIR'] ?? join(homedir(), '.cache', 'pivot', 'tools'), 'bin');
const HELM = join(BIN, 'helm');
const KUBECONFORM = join(BIN, 'kubeconform');
const SCHEMAS = join(BIN, 'kube-schemas');
const VERSIONS = pinnedVersions();
const KUBE_VERSION = VERSIONS['KUBE_VERSION']!;
const NAMESPACE = 'pivot-system';
/** The kinds no offline schema covers (prometheus-operator's CRDs): skipped by name, nothing else. */
const NO_SCHEMA = ['ServiceMonitor', 'PrometheusRule'];

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const scratch = mkdtempSync(join(tmpdir(), 'pivot-chart-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(command: string, args: string[], input?: string): Run {
  const r = spawnSync(command, args, {
    input,
    encoding: 'utf8',
    // helm keeps no state of the user's: its cache, configuration and data live in the scratch dir.
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(scratch, 'helm-cache'),
      HELM_CONFIG_HOME: join(scratch, 'helm-config'),
      HELM_DATA_HOME: join(scratch, 'helm-data'),
    },
  });
  if (r.error) throw r.error;
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

function template(args: string[]): Run {
  return run(HELM, [
    'template',
    'pivot',
    CHART,
    '--namespace',
    NAMESPACE,
    '--kube-version',
    KUBE_VERSION,
    ...args,
  ]);
}

/** The renders every check runs on. */
const RENDERS: Record<string, string[]> = {
  default: [],
  full: ['-f', join(CHART, 'ci', 'full-values.yaml')],
  // A release in dc-b's own cluster: only dc-b's worker, through this cluster's ServiceAccount.
  'site-only': [
    '--set',
    'controlWorker.enabled=false',
    '--set',
    'api.enabled=false',
    '--set-json',
    `sites=${JSON.stringify([
      {
        name: 'dc-a',
        clientCidrs: ['10.10.0.0/16'],
        credentials: { kubeconfigSecret: { name: 'pivot-dc-a-kubeconfig', key: 'kubeconfig' } },
        worker: { enabled: false },
      },
      { name: 'dc-b', clientCidrs: ['10.20.0.0/16'], credentials: { inCluster: true } },
    ])}`,
  ],
  'rbac-only': ['--set', 'rbacOnly=true', '--set', 'rbac.tokenSecrets=true'],
};

const rendered: Record<string, { text: string; objects: KubeObject[] }> = {};

function objectsOf(text: string): KubeObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

const ofKind = <T>(objects: KubeObject[], kind: string) =>
  objects.filter((o) => o.kind === kind) as unknown as Array<T & KubeObject>;

beforeAll(() => {
  const missing = [HELM, KUBECONFORM, SCHEMAS].filter((p) => !existsSync(p));
  if (spawnSync('promtool', ['--version']).error) missing.push('promtool (Debian: prometheus)');
  if (missing.length > 0) {
    throw new Error(
      `missing: ${missing.join(', ')}; run \`npm run tools\` (or lab/tools/provision.sh helm kubeconform kube-schemas)`,
    );
  }
  const version = run(HELM, ['version', '--short']).stdout.trim();
  if (!version.startsWith(VERSIONS['HELM_VERSION']!)) {
    throw new Error(`helm ${version} in ${BIN}, pinned ${VERSIONS['HELM_VERSION']}: run \`npm run tools\``);
  }
  for (const [name, args] of Object.entries(RENDERS)) {
    const r = template(args);
    if (r.code !== 0) throw new Error(`helm template (${name}) failed:\n${r.stderr}`);
    rendered[name] = { text: r.stdout, objects: objectsOf(r.stdout) };
  }
});

describe('the Helm chart', () => {
  it('is the version of Pivot it installs, and passes helm lint --strict', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { appVersion: string };
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(chart.appVersion).toBe(pkg.version);
    for (const values of [[], ['-f', join(CHART, 'ci', 'full-values.yaml')]]) {
      const r = run(HELM, ['lint', '--strict', CHART, '--kube-version', KUBE_VERSION, ...values]);
      expect({ values, code: r.code, out: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({
        values,
        code: 0,
        out: '',
      });
    }
  });

  it.each(Object.keys(RENDERS))(
    'renders (%s) objects that pass kubeconform -strict against Kubernetes schemas',
    (name) => {
      const { text, objects } = rendered[name]!;
      expect(objects.length).toBeGreaterThan(3);
      const r = run(
        KUBECONFORM,
        [
          '-strict',
          '-summary',
          '-verbose',
          '-output',
          'json',
          '-kubernetes-version',
          KUBE_VERSION.replace(/^v/, ''),
          '-schema-location',
          `${SCHEMAS}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
          '-skip',
          NO_SCHEMA.join(','),
          '-',
        ],
        text,
      );
      const report = JSON.parse(r.stdout) as {
        resources: Array<{ kind: string; name: string; status: string; msg: string }>;
      };
      const bad = report.resources.filter((x) => x.status !== 'statusValid' && x.status !== 'statusSkipped');
      expect(bad).toEqual([]);
      expect(r.code).toBe(0);
      // Every object was checked: only the two prometheus-operator kinds are skipped.
      expect(report.resources.length).toBe(objects.length);
      const skipped = report.resources.filter((x) => x.status === 'statusSkipped').map((x) => x.kind);
      expect(skipped.sort()).toEqual(
        objects
          .map((o) => o.kind)
          .filter((k) => NO_SCHEMA.includes(k))
          .sort(),
      );
    },
  );

  it('is checked by kubeconform strictly: an unknown field or kind is refused', () => {
    const deployment = ofKind<V1Deployment>(rendered['full']!.objects, 'Deployment')[0]!;
    const typo = structuredClone(deployment);
    (typo.spec!.template.spec!.containers[0] as V1Container & { imagePulPolicy?: string }).imagePulPolicy =
      'Always';
    const unknown = { apiVersion: 'pivot.dev/v1', kind: 'NoSuchKind', metadata: { name: 'x' } };
    for (const object of [typo, unknown]) {
      const r = run(
        KUBECONFORM,
        ['-strict', '-schema-location', `${SCHEMAS}/{{ .ResourceKind }}{{ .KindSuffix }}.json`, '-'],
        stringify(object),
      );
      expect(r.code).toBe(1);
    }
  });

  it('carries deploy/prometheus/*.rules.yaml as its PrometheusRule, which promtool accepts', () => {
    const [rule, ...more] = ofKind<{ spec: { groups: unknown[] } }>(
      rendered['full']!.objects,
      'PrometheusRule',
    );
    expect(more).toEqual([]);
    const files = readdirSync(RULES)
      .filter((f) => f.endsWith('.rules.yaml'))
      .sort();
    const groups = files.flatMap(
      (f) => (parse(readFileSync(join(RULES, f), 'utf8')) as { groups: unknown[] }).groups,
    );
    expect(groups.length).toBeGreaterThan(1);
    expect(rule!.spec.groups).toEqual(groups);
    const file = join(scratch, 'prometheusrule.rules.yaml');
    writeFileSync(file, stringify({ groups: rule!.spec.groups }));
    const checked = run('promtool', ['check', 'rules', file]);
    expect({ code: checked.code, out: checked.stdout + checked.stderr }).toEqual({
      code: 0,
      out: expect.stringContaining('SUCCESS') as unknown,
    });
    // The ServiceMonitor scrapes the API (https with api.tls) and the workers.
    const [monitor] = ofKind<{ spec: { endpoints: Array<{ port: string; scheme?: string }> } }>(
      rendered['full']!.objects,
      'ServiceMonitor',
    );
    expect(monitor!.spec.endpoints.map((e) => [e.port, e.scheme ?? 'http'])).toEqual([
      ['https', 'https'],
      ['metrics', 'http'],
    ]);
    expect(ofKind(rendered['default']!.objects, 'PrometheusRule')).toEqual([]);
  });

  it('refuses bad values through its schema', () => {
    const bad: Array<[string[], string]> = [
      [['--set', 'securityContext.readOnlyRootFilesystem=false'], '/securityContext/readOnlyRootFilesystem'],
      [['--set', 'podSecurityContext.runAsNonRoot=false'], '/podSecurityContext/runAsNonRoot'],
      [['--set', 'sites[0].name=DC_A'], '/sites/0/name'],
      [['--set', 'witness.sentinel.enabled=true'], '/witness/sentinel'],
      [['--set', 'temporal.apiKey.secretName=pivot-temporal-key'], '/temporal/tls/enabled'],
      [['--set', 'api.tls.enabled=true'], '/api/tls/secretName'],
      [['--set', 'api.replica=3'], "additional properties 'replica' not allowed"],
      [
        ['--set-json', 'api.tokens=[{"name":"bot","sha256":"not-a-digest","roles":["operator"]}]'],
        '/api/tokens/0/sha256',
      ],
      [
        [
          '--set-json',
          'sites[1].credentials={"inCluster":true,"kubeconfigSecret":{"name":"x","key":"kubeconfig"}}',
        ],
        '/sites/1/credentials',
      ],
    ];
    for (const [args, where] of bad) {
      const r = template(args);
      expect({ args, code: r.code, refused: r.stderr }).toEqual({
        args,
        code: 1,
        refused: expect.stringMatching(
          new RegExp(`values don't meet the specifications[\\s\\S]*${where.replace(/[/[\]]/g, '\\$&')}`),
        ) as unknown,
      });
    }
    // A bad values file, through helm lint too.
    const file = join(scratch, 'bad-values.yaml');
    writeFileSync(file, stringify({ image: { pullPolicy: 'Sometimes' } }));
    const linted = run(HELM, ['lint', CHART, '-f', file]);
    expect(linted.code).toBe(1);
    expect(linted.stdout + linted.stderr).toContain('/image/pullPolicy');
  });

  it.each(['default', 'full', 'site-only'])(
    'renders (%s) a Pivot configuration that loads, and mounts every file it names where it is read',
    (name) => {
      const { objects } = rendered[name]!;
      const configMap = ofKind<V1ConfigMap>(objects, 'ConfigMap').find((c) =>
        c.metadata.name.endsWith('-config'),
      )!;
      const configs = new Map<string, PivotConfig>();
      for (const key of ['worker.yaml', 'reader.yaml']) {
        const file = join(scratch, `${name}-${key}`);
        writeFileSync(file, configMap.data![key]!);
        configs.set(key, loadConfig(file));
      }
      const deployments = ofKind<V1Deployment>(objects, 'Deployment');
      expect(deployments.length).toBeGreaterThan(0);
      for (const d of deployments) {
        const pod = d.spec!.template.spec!;
        const component = d.metadata.labels!['app.kubernetes.io/component']!;
        const site = d.metadata.labels!['pivot.dev/site'];
        const container = pod.containers[0]!;
        const { files, configKey, mountPath } = projected(pod, container);
        expect(
          container.args!.slice(container.args!.indexOf('--config'), container.args!.indexOf('--config') + 2),
        ).toEqual(['--config', `${mountPath}/pivot.yaml`]);
        expect(configKey).toBe(component === 'site-worker' ? 'worker.yaml' : 'reader.yaml');
        const config = configs.get(configKey)!;
        const needed = filesRead(config, component, site);
        expect({ deployment: d.metadata.name, missing: needed.filter((f) => !files.has(f)) }).toEqual({
          deployment: d.metadata.name,
          missing: [],
        });
        // The runbooks where the configuration looks for them.
        expect(container.volumeMounts!.find((m) => m.name === 'runbooks')?.mountPath).toBe(
          config.runbooks.dir,
        );
        // A site worker mounts its own site's kubeconfig only (none in its own cluster); a pod
        // carries a ServiceAccount token only when it reaches a site as itself (inCluster).
        const reached = config.sites.filter((s) => component !== 'site-worker' || s.name === site);
        expect([...files].filter((f) => f.includes('/sites/')).sort()).toEqual(
          reached.flatMap((s) => (s.kubeconfig ? [s.kubeconfig] : [])).sort(),
        );
        const inCluster = reached.some((s) => s.inCluster === true);
        expect({ deployment: d.metadata.name, token: pod.automountServiceAccountToken }).toEqual({
          deployment: d.metadata.name,
          token: inCluster,
        });
      }
    },
  );

  it('gives the readers their own identity on a site reached from outside', () => {
    const deployments = ofKind<V1Deployment>(rendered['full']!.objects, 'Deployment');
    const secretsOf = (name: string) =>
      deployments
        .find((d) => d.metadata.name === `pivot-${name}`)!
        .spec!.template.spec!.volumes!.find((v) => v.name === 'pivot')!
        .projected!.sources!.flatMap((s) => (s.secret ? [s.secret.name] : []));
    for (const reader of ['api', 'control-worker']) {
      expect(secretsOf(reader)).toContain('pivot-dc-b-reader-kubeconfig');
      expect(secretsOf(reader)).not.toContain('pivot-dc-b-kubeconfig');
    }
    expect(secretsOf('site-worker-dc-b')).toContain('pivot-dc-b-kubeconfig');
    expect(secretsOf('site-worker-dc-b')).not.toContain('pivot-dc-b-reader-kubeconfig');
    const reader = parse(
      ofKind<V1ConfigMap>(rendered['full']!.objects, 'ConfigMap').find(
        (c) => c.metadata.name === 'pivot-config',
      )!.data!['reader.yaml']!,
    ) as PivotConfig;
    expect(reader.sites.find((s) => s.name === 'dc-b')!.context).toBe('dc-b-pivot-reader');
  });

  it.each(Object.keys(RENDERS))(
    'grants (%s) no cluster-admin and no wildcard, only the rules in files/rbac/',
    (name) => {
      const { objects } = rendered[name]!;
      expect(rbacProblems(objects)).toEqual([]);
      const roles = objects.filter((o) => o.kind === 'ClusterRole');
      const file = (f: string) =>
        parse(readFileSync(join(CHART, 'files', 'rbac', f), 'utf8')) as V1PolicyRule[];
      const rulesOf = (suffix: string) =>
        roles.find((r) => r.metadata.name.endsWith(`-${suffix}`))?.['rules'];
      if (rulesOf('site-worker')) expect(rulesOf('site-worker')).toEqual(file('site-worker.yaml'));
      if (rulesOf('reader')) expect(rulesOf('reader')).toEqual(file('api-reader.yaml'));
    },
  );

  it('sees what it must refuse in RBAC and in containers', () => {
    const objects = structuredClone(rendered['full']!.objects);
    const role = objects.find((o) => o.kind === 'ClusterRole')!;
    (role['rules'] as V1PolicyRule[])[0]!.verbs.push('*');
    (objects.find((o) => o.kind === 'ClusterRoleBinding') as V1ClusterRoleBinding & KubeObject).roleRef.name =
      'cluster-admin';
    expect(rbacProblems(objects)).toEqual([
      "ClusterRole pivot-system-pivot-site-worker: '*' in verbs",
      'ClusterRoleBinding pivot-system-pivot-site-worker: binds cluster-admin, not a role of the chart',
      'cluster-admin is named',
    ]);
    const deployment = ofKind<V1Deployment>(objects, 'Deployment')[0]!;
    const pod = deployment.spec!.template.spec!;
    pod.containers[0]!.securityContext!.readOnlyRootFilesystem = false;
    pod.initContainers = [{ name: 'setup', image: 'busybox' }];
    expect(containerProblems([deployment])).toEqual([
      'pivot-api/setup: readOnlyRootFilesystem, allowPrivilegeEscalation, capabilities.drop',
      'pivot-api/api: readOnlyRootFilesystem',
    ]);
  });

  it('binds each process only to what it needs', () => {
    const subjects = (name: string) =>
      Object.fromEntries(
        ofKind<V1ClusterRoleBinding>(rendered[name]!.objects, 'ClusterRoleBinding').map((b) => [
          b.roleRef.name.replace(`${NAMESPACE}-pivot-`, ''),
          (b.subjects ?? []).map((s) => s.name),
        ]),
      );
    expect(subjects('default')).toEqual({
      'site-worker': ['pivot-site-worker'],
      reader: ['pivot-control-worker', 'pivot-api'],
    });
    // dc-b's own release: its worker's role only; the readers are not in this cluster.
    expect(subjects('site-only')).toEqual({ 'site-worker': ['pivot-site-worker'] });
    expect(subjects('rbac-only')).toEqual({ 'site-worker': ['pivot-site-worker'], reader: ['pivot-reader'] });
    // RBAC only: nothing but identities and their roles; the tokens are filled in by Kubernetes.
    const kinds = new Set(rendered['rbac-only']!.objects.map((o) => o.kind));
    expect([...kinds].sort()).toEqual(['ClusterRole', 'ClusterRoleBinding', 'Secret', 'ServiceAccount']);
    for (const s of ofKind<{ type: string; data?: unknown }>(rendered['rbac-only']!.objects, 'Secret')) {
      expect([s.type, s.data]).toEqual(['kubernetes.io/service-account-token', undefined]);
    }
    // The chart never holds a secret value.
    for (const name of ['default', 'full', 'site-only'])
      expect(ofKind(rendered[name]!.objects, 'Secret')).toEqual([]);
  });

  it.each(['default', 'full', 'site-only'])(
    'runs (%s) every container as non-root on a read-only root file system, without capabilities; budgets',
    (name) => {
      const deployments = ofKind<V1Deployment>(rendered[name]!.objects, 'Deployment');
      expect(deployments.length).toBeGreaterThan(0);
      expect(containerProblems(deployments)).toEqual([]);
      // Each process that runs more than one replica keeps one through a drain, and spreads.
      const budgets = ofKind<V1PodDisruptionBudget>(rendered[name]!.objects, 'PodDisruptionBudget');
      for (const d of deployments.filter((x) => (x.spec!.replicas ?? 1) > 1)) {
        const labels = d.spec!.template.metadata!.labels!;
        const budget = budgets.find((b) =>
          Object.entries(b.spec!.selector!.matchLabels!).every(([k, v]) => labels[k] === v),
        );
        expect({ deployment: d.metadata.name, budget: budget?.spec?.maxUnavailable }).toEqual({
          deployment: d.metadata.name,
          budget: 1,
        });
        expect(d.spec!.template.spec!.affinity?.podAntiAffinity).toBeDefined();
      }
    },
  );
});

/**
 * What RBAC must not grant: cluster-admin (bound or named anywhere), a wildcard in any verb,
 * resource, API group or resource name, non-resource URLs, aggregation; and every binding names a
 * role and ServiceAccounts of the same render.
 */
function rbacProblems(objects: KubeObject[]): string[] {
  const problems: string[] = [];
  const roles = objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
  for (const role of roles) {
    const at = `${role.kind} ${role.metadata.name}`;
    if (role['aggregationRule']) problems.push(`${at}: aggregates other roles`);
    for (const rule of (role['rules'] as V1PolicyRule[] | undefined) ?? []) {
      for (const field of ['verbs', 'resources', 'apiGroups', 'resourceNames'] as const)
        for (const x of rule[field] ?? []) if (x.includes('*')) problems.push(`${at}: '${x}' in ${field}`);
      if (rule.nonResourceURLs) problems.push(`${at}: nonResourceURLs`);
    }
  }
  const accounts = ofKind(objects, 'ServiceAccount').map((a) => a.metadata.name);
  const bindings = objects.filter(
    (o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding',
  ) as Array<V1ClusterRoleBinding & KubeObject>;
  for (const b of bindings) {
    const at = `${b.kind} ${b.metadata.name}`;
    if (!roles.some((r) => r.metadata.name === b.roleRef.name))
      problems.push(`${at}: binds ${b.roleRef.name}, not a role of the chart`);
    for (const s of b.subjects ?? [])
      if (s.kind !== 'ServiceAccount' || !accounts.includes(s.name) || s.namespace !== NAMESPACE)
        problems.push(`${at}: subject ${s.kind} ${s.namespace}/${s.name} is not one of the chart's accounts`);
  }
  if (JSON.stringify(objects).includes('cluster-admin')) problems.push('cluster-admin is named');
  return problems;
}

/**
 * What a container must be: non-root (uid 10001), a read-only root file system, no privilege
 * escalation, every capability dropped; its pod with the runtime's seccomp profile, no host
 * network, and /tmp (an emptyDir) as its only writable place.
 */
function containerProblems(deployments: V1Deployment[]): string[] {
  const problems: string[] = [];
  for (const d of deployments) {
    const pod = d.spec!.template.spec!;
    const name = d.metadata!.name!;
    if (pod.securityContext?.seccompProfile?.type !== 'RuntimeDefault') problems.push(`${name}: seccomp`);
    if (pod.hostNetwork || pod.hostPID || pod.hostIPC) problems.push(`${name}: host namespaces`);
    if (!pod.volumes?.find((v) => v.name === 'tmp')?.emptyDir) problems.push(`${name}: no emptyDir for /tmp`);
    for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
      const sc = c.securityContext ?? {};
      const wrong = Object.entries({
        runAsNonRoot: (sc.runAsNonRoot ?? pod.securityContext?.runAsNonRoot) === true,
        runAsUser: (sc.runAsUser ?? pod.securityContext?.runAsUser) === 10001,
        readOnlyRootFilesystem: sc.readOnlyRootFilesystem === true,
        allowPrivilegeEscalation: sc.allowPrivilegeEscalation === false,
        privileged: !sc.privileged,
        'capabilities.drop': JSON.stringify(sc.capabilities?.drop) === '["ALL"]',
        'capabilities.add': (sc.capabilities?.add ?? []).length === 0,
      })
        .filter(([, ok]) => !ok)
        .map(([field]) => field);
      if (wrong.length > 0) problems.push(`${name}/${c.name}: ${wrong.join(', ')}`);
    }
  }
  return problems;
}

/** The files a pod's projected volume holds (absolute paths), which config variant it mounts, and where. */
function projected(pod: V1PodSpec, container: V1Container) {
  const mountPath = container.volumeMounts!.find((m) => m.name === 'pivot')!.mountPath;
  const files = new Set<string>();
  let configKey = '';
  for (const source of pod.volumes!.find((v) => v.name === 'pivot')!.projected!.sources!) {
    for (const item of source.configMap?.items ?? source.secret?.items ?? []) {
      files.add(`${mountPath}/${item.path}`);
      if (item.path === 'pivot.yaml') configKey = item.key;
    }
  }
  return { files, configKey, mountPath };
}

/** The files a process reads, by its configuration: the API alone serves TLS and checks hooks and JWTs. */
function filesRead(config: PivotConfig, component: string, site: string | undefined): string[] {
  const tls = (t?: { caFile?: string; certFile?: string; keyFile?: string }) =>
    [t?.caFile, t?.certFile, t?.keyFile].filter((f): f is string => !!f);
  const files = [
    ...config.sites.filter((s) => component !== 'site-worker' || s.name === site).map((s) => s.kubeconfig),
    ...tls(config.temporal.tls),
    config.temporal.apiKeyFile,
    config.witness.passwordFile,
    config.witness.sentinel?.passwordFile,
    ...tls(config.witness.tls),
  ];
  if (component === 'api') {
    files.push(
      ...tls(config.api.tls),
      config.api.oidc?.jwksFile,
      config.alerts?.grafana?.hmac?.secretFile,
      config.alerts?.alertmanager?.hmac?.secretFile,
    );
  }
  return files.filter((f): f is string => !!f);
}
