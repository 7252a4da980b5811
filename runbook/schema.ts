/**
 * The JSON Schema (draft-07) of a runbook, the shape of runbook/types.ts as written in YAML: what
 * editors use for completion and inline errors (runbooks/runbook.schema.json is this object, written
 * by `pivot runbook schema`), and the first pass of the validator. Every object is closed
 * (`additionalProperties: false`) so that a misspelt field is an error rather than a silently
 * ignored setting. Rules that need more than one field at a time (unique names, references,
 * namespaces, sites) are in rules.ts.
 *
 * Every default the validator fills in (defaults.ts) is stated in the description of its field
 * and, where it is a constant, as `default`, so that an editor shows it.
 */
import { APPROVAL_DEFAULTS, DEFAULT_PRIORITY_TIER } from './defaults.ts';
import { DURATION_PATTERN } from './duration.ts';
import {
  HOOK_PHASES,
  OPERATIONS,
  REPLICATION_PROVIDERS,
  RUNBOOK_API_VERSION,
  RUNBOOK_KIND,
  WORKLOAD_KINDS,
  type ApprovalPolicy,
  type HealthCheck,
  type Hook,
  type HookPhase,
  type TrafficTarget,
} from './types.ts';

/** A JSON Schema object; kept loose because it is data for Ajv and editors, not for TypeScript. */
export type JsonSchema = { [keyword: string]: unknown };

/**
 * The string patterns of the schema with what each means in words: the validator turns a
 * `pattern` failure into "expected <means>" rather than showing a regular expression.
 */
export const PATTERNS = {
  dnsLabel: {
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
    means:
      'a DNS-1123 label: at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit',
  },
  dnsSubdomain: {
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
    means: 'a Kubernetes object name (DNS-1123 subdomain): lowercase letters, digits, "-" and "."',
  },
  duration: {
    pattern: DURATION_PATTERN,
    means:
      'a duration: whole hours, minutes, seconds, milliseconds in that order, such as 250ms, 30s, 5m, 1h30m',
  },
} as const;

/** Each value of a closed set with its meaning, typed against types.ts so none can be missing. */
const APPROVAL_POLICIES: Record<ApprovalPolicy, string> = {
  none: 'the operation starts as soon as it is asked for',
  required: 'the operation waits for a second person to approve its plan',
};
const ON_ERROR: Record<Hook['onError'], string> = {
  fail: 'a failed or timed-out hook fails the operation at that step',
  continue: 'a failed or timed-out hook is reported and the operation goes on',
};
const HOOK_PHASE_MEANING: Record<HookPhase, string> = {
  'pre-fence': 'on the source, before its workloads are stopped and it is fenced',
  'post-promote':
    'on the target, once its volumes are promoted and its workloads ready, before traffic moves',
  'post-failover': 'on the target, after traffic has moved',
};

const string = (description: string): JsonSchema => ({ type: 'string', minLength: 1, description });
const dnsLabel = (description: string): JsonSchema => ({
  type: 'string',
  pattern: PATTERNS.dnsLabel.pattern,
  maxLength: 63,
  description,
});
const objectName = (description: string): JsonSchema => ({
  type: 'string',
  pattern: PATTERNS.dnsSubdomain.pattern,
  maxLength: 253,
  description,
});
const duration = (description: string): JsonSchema => ({
  type: 'string',
  pattern: PATTERNS.duration.pattern,
  maxLength: 32,
  description,
});
const namespace = (what: string): JsonSchema =>
  dnsLabel(`Namespace of ${what}; one of spec.namespaces. Default: the first of spec.namespaces.`);
/** Selectors must not be empty: an empty selector matches every object of the namespace. */
const labels = (description: string): JsonSchema => ({
  type: 'object',
  minProperties: 1,
  additionalProperties: { type: 'string' },
  description,
});
const command = (description: string): JsonSchema => ({
  type: 'array',
  minItems: 1,
  items: { type: 'string' },
  description,
});
const closed = (
  description: string,
  properties: Record<string, JsonSchema>,
  required: string[],
  extra: JsonSchema = {},
): JsonSchema => ({
  type: 'object',
  description,
  properties,
  ...(required.length > 0 ? { required } : {}),
  additionalProperties: false,
  ...extra,
});
/** "Exactly one of these fields": the validator reads the branches back to word its message. */
const exactlyOneOf = (...fields: string[]): JsonSchema => ({
  oneOf: fields.map((f) => ({ required: [f] })),
});
const describedEnum = (values: Record<string, string>, description: string): JsonSchema => ({
  enum: Object.keys(values),
  description: `${description} ${Object.entries(values)
    .map(([v, meaning]) => `\`${v}\`: ${meaning}.`)
    .join(' ')}`,
});

/**
 * An object whose form depends on its `kind`: each form is closed on its own, selected by
 * if/then rather than oneOf, so that a wrong field is reported against the kind the author wrote
 * and not as "matches none of four schemas".
 */
const byKind = (
  description: string,
  kindDescription: string,
  common: Record<string, JsonSchema>,
  forms: Record<string, { description: string; properties: Record<string, JsonSchema>; required: string[] }>,
): JsonSchema => ({
  type: 'object',
  description,
  required: ['kind', 'name'],
  properties: { kind: { enum: Object.keys(forms), description: kindDescription }, ...common },
  allOf: Object.entries(forms).map(([kind, form]) => ({
    if: { properties: { kind: { const: kind } }, required: ['kind'] },
    then: {
      description: form.description,
      properties: { kind: { const: kind, description: form.description }, ...common, ...form.properties },
      required: ['kind', 'name', ...form.required],
      additionalProperties: false,
    },
  })),
});

const perSite = (valueSchema: JsonSchema, description: string): JsonSchema => ({
  type: 'object',
  minProperties: 1,
  additionalProperties: valueSchema,
  description: `${description} Keyed by site: exactly spec.sites.primary and spec.sites.secondary.`,
});

const workload = closed(
  'A workload the operation stops on the source and starts on the target.',
  {
    kind: { enum: [...WORKLOAD_KINDS], description: 'The workload kind.' },
    name: objectName('Name of the StatefulSet or Deployment.'),
    namespace: namespace('the workload'),
    startOrder: {
      type: 'integer',
      minimum: 0,
      description:
        'Start order on the target: lower first; equal orders start together. Stop order on the source is the reverse.',
    },
  },
  ['kind', 'name', 'startOrder'],
);

const volumeGroup = closed(
  'Claims replicated together, picked by name (claim) or by label selector (selector): exactly one of the two.',
  {
    name: dnsLabel('A name for the group, unique in the runbook (used in plans and errors).'),
    namespace: namespace('the claims'),
    claim: objectName('Name of one PersistentVolumeClaim.'),
    selector: closed(
      'Every claim of the namespace with these labels.',
      { matchLabels: labels('Labels every selected claim has; at least one.') },
      ['matchLabels'],
    ),
    replication: closed(
      'How the claims are replicated between the sites.',
      {
        provider: { enum: [...REPLICATION_PROVIDERS], description: 'The replication API Pivot drives.' },
        volumeReplicationClass: objectName(
          'csi-addons: the VolumeReplicationClass; the VolumeReplication objects are named after the claims.',
        ),
      },
      ['provider', 'volumeReplicationClass'],
    ),
  },
  ['name', 'replication'],
  exactlyOneOf('claim', 'selector'),
);

const trafficForms: Record<
  TrafficTarget['kind'],
  { description: string; properties: Record<string, JsonSchema>; required: string[] }
> = {
  ServiceSelector: {
    description: 'A Service whose selector is switched on (target) and off (source).',
    properties: { selector: labels('The selector the Service has on the active site.') },
    required: ['selector'],
  },
  ServiceExternalName: {
    description: "A Service of type ExternalName pointed at each site's address.",
    properties: {
      externalNames: perSite(string('A DNS name.'), 'The externalName for each site.'),
    },
    required: ['externalNames'],
  },
  EndpointSlice: {
    description: "A selectorless Service whose EndpointSlice is rewritten with each site's addresses.",
    properties: {
      addresses: perSite(
        { type: 'array', minItems: 1, items: string('An IP address.') },
        "Each site's endpoint addresses.",
      ),
      port: { type: 'integer', minimum: 1, maximum: 65535, description: 'The endpoint port.' },
    },
    required: ['addresses', 'port'],
  },
  DNSEndpoint: {
    description: "An external-dns DNSEndpoint whose record targets each site's address.",
    properties: {
      dnsName: string('The record name, such as orders.example.com.'),
      recordType: { enum: ['A', 'CNAME'] satisfies Array<'A' | 'CNAME'>, description: 'The record type.' },
      targets: perSite(
        { type: 'array', minItems: 1, items: string('An address or name.') },
        "The record's targets for each site.",
      ),
    },
    required: ['dnsName', 'recordType', 'targets'],
  },
};

const trafficTarget = byKind(
  'Where clients reach the application; repointed from the source site to the target.',
  'How traffic is switched.',
  { name: objectName('Name of the Service or DNSEndpoint.'), namespace: namespace('the object') },
  trafficForms,
);

const hook = closed(
  'A command run at a phase of the operation: a Job it creates (job) or a command in a running pod (exec); exactly one of the two.',
  {
    name: dnsLabel('Name of the hook, unique in the runbook; health checks of kind Hook refer to it.'),
    // The values in the order of the as-const array of types.ts, which the meanings are typed against.
    phase: { ...describedEnum(HOOK_PHASE_MEANING, 'When the hook runs.'), enum: [...HOOK_PHASES] },
    job: closed(
      'A Job created for the hook, on the site where its phase runs.',
      {
        image: string('Container image of the Job.'),
        command: command('The command and its arguments.'),
        namespace: namespace('the Job'),
      },
      ['image', 'command'],
    ),
    exec: closed(
      'A command run in a running pod, picked by name (pod) or by labels (selector): exactly one of the two.',
      {
        namespace: namespace('the pod'),
        pod: objectName('Name of the pod.'),
        selector: labels('Labels of the pod; the first ready match is used.'),
        container: dnsLabel("The container; default: the pod's first container."),
        command: command('The command and its arguments.'),
      },
      ['command'],
      exactlyOneOf('pod', 'selector'),
    ),
    timeout: duration('How long the hook may run before it counts as failed.'),
    onError: describedEnum(ON_ERROR, 'What a failed hook does to the operation.'),
  },
  ['name', 'phase', 'timeout', 'onError'],
  exactlyOneOf('job', 'exec'),
);

const healthCheckForms: Record<
  HealthCheck['kind'],
  { description: string; properties: Record<string, JsonSchema>; required: string[] }
> = {
  WorkloadsReady: {
    description: 'Every workload of the runbook reports all its replicas ready on the target.',
    properties: { timeout: duration('How long to wait for readiness.') },
    required: ['timeout'],
  },
  Hook: {
    description: 'A hook of spec.hooks run as a check; it passes when the command exits 0.',
    properties: { hook: dnsLabel('Name of a hook in spec.hooks.') },
    required: ['hook'],
  },
};

const healthCheck = byKind(
  'How the operation tells that the application works on the target.',
  'What is checked.',
  { name: dnsLabel('Name of the check, unique in the runbook.') },
  healthCheckForms,
);

const approval = closed(
  'Whether each operation waits for approval. Defaults: failover `required`, every other operation `none`.',
  Object.fromEntries(
    OPERATIONS.map((op) => [
      op,
      {
        ...describedEnum(APPROVAL_POLICIES, `Approval for ${op}. Default: \`${APPROVAL_DEFAULTS[op]}\`.`),
        default: APPROVAL_DEFAULTS[op],
      },
    ]),
  ),
  [],
);

const priority = closed(
  'Where this application moves in a site-wide operation. Default: tier 100, no dependencies.',
  {
    tier: {
      type: 'integer',
      minimum: 0,
      default: DEFAULT_PRIORITY_TIER,
      description: `Lower tiers move first. Default: ${DEFAULT_PRIORITY_TIER}.`,
    },
    dependsOn: {
      type: 'array',
      uniqueItems: true,
      items: dnsLabel('metadata.name of another runbook.'),
      default: [],
      description:
        'Runbooks (by metadata.name) that must have moved before this one; they must exist, be in the same or a lower tier, and not form a cycle. Default: none.',
    },
  },
  [],
);

export const RUNBOOK_SCHEMA: JsonSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Pivot runbook',
  ...closed(
    'A Pivot runbook: what a failover of one application must move, in what order, and how to tell it worked.',
    {
      apiVersion: { const: RUNBOOK_API_VERSION, description: `Always ${RUNBOOK_API_VERSION}.` },
      kind: { const: RUNBOOK_KIND, description: `Always ${RUNBOOK_KIND}.` },
      metadata: closed(
        'Identifies the runbook.',
        {
          name: dnsLabel(
            'Name of the application, unique among the runbooks; priority.dependsOn refers to it.',
          ),
          labels: {
            type: 'object',
            additionalProperties: { type: 'string' },
            description: 'Free labels, for grouping runbooks.',
          },
          tenant: dnsLabel(
            "The tenant (business line, team) that owns the application; without it, the configuration's tenants decide by namespace, else the tenant default.",
          ),
        },
        ['name'],
      ),
      spec: closed(
        'What the operation moves and how.',
        {
          namespaces: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: dnsLabel('A namespace of the application.'),
            description:
              "The application's namespaces; the first is the default namespace of every object without one.",
          },
          sites: closed(
            'Where the application normally runs and where it fails over to: site names of the Pivot configuration.',
            {
              primary: string('The site the application normally runs on.'),
              secondary: string('The site it fails over to; not the primary.'),
            },
            ['primary', 'secondary'],
          ),
          workloads: {
            type: 'array',
            minItems: 1,
            items: workload,
            description: 'The StatefulSets and Deployments of the application.',
          },
          volumes: {
            type: 'array',
            items: volumeGroup,
            description: 'The replicated claims, in groups; [] for an application without volumes.',
          },
          traffic: {
            type: 'array',
            items: trafficTarget,
            default: [],
            description: 'What repoints clients to the active site. Default: none.',
          },
          hooks: {
            type: 'array',
            items: hook,
            default: [],
            description: 'Commands run during the operation. Default: none.',
          },
          healthChecks: {
            type: 'array',
            items: healthCheck,
            default: [],
            description: 'Checks that decide whether the operation worked. Default: none.',
          },
          objectives: closed(
            'Recovery objectives the reports measure the operation against.',
            {
              rpo: duration(
                'Recovery point objective: the most data loss (replication lag) accepted; 0s for none.',
              ),
              rto: duration('Recovery time objective: the longest the application may be unavailable.'),
            },
            ['rpo', 'rto'],
          ),
          approval,
          priority,
        },
        ['namespaces', 'sites', 'workloads', 'volumes', 'objectives'],
      ),
    },
    ['apiVersion', 'kind', 'metadata', 'spec'],
  ),
};
