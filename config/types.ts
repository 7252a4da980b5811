/**
 * Pivot's configuration (`apiVersion: pivot.dev/v1alpha1`, `kind: PivotConfig`): the sites and how
 * to reach them, the Temporal connection, the witness, the API, and where the runbooks are.
 * `pivot lab up` writes one for the lab; every command finds it through `--config`, then
 * `PIVOT_CONFIG`, then the running lab's.
 */

export const CONFIG_API_VERSION = 'pivot.dev/v1alpha1';
export const CONFIG_KIND = 'PivotConfig';

export interface SiteConfig {
  name: string;
  /**
   * Path of the kubeconfig for this site's API (relative paths are relative to the config file).
   * Exactly one of `kubeconfig` and `inCluster`.
   */
  kubeconfig?: string;
  /** Context in that kubeconfig; its current context when absent. */
  context?: string;
  /**
   * Reach this site as the pod's own ServiceAccount: for a process that runs in this site's
   * cluster (a site worker in its datacenter). Each request is still bounded by a timeout.
   */
  inCluster?: boolean;
  region?: string;
  /** The site's client networks: what a NetworkFence names to cut the site off from storage. */
  clientCidrs: string[];
  /**
   * How Pivot creates a csi-addons NetworkFence on this site's cluster (fencing the other site):
   * a NetworkFenceClass, or the older driver secret (the driver is the volumes' CSI driver).
   */
  networkFence?: NetworkFenceSettings;
}

export const ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiConfig {
  /** host:port the API listens on. */
  listen: string;
  /**
   * Serve HTTPS only, with this certificate and key (PEM files; relative paths are relative to the
   * config file), reloaded when they change. Absent: plain HTTP, behind an ingress or mesh that
   * terminates TLS.
   */
  tls?: ApiTlsConfig;
  /**
   * Bearer tokens: a name, the SHA-256 hex digest of the token (never the token), roles, and an
   * optional expiry. Each authenticates as the principal `token:<name>`.
   */
  tokens?: StaticToken[];
  /**
   * More tokens, in a file of the same list (YAML), read again when it changes: a token is added,
   * renewed or revoked without a restart. Its names must not repeat those of `tokens`.
   */
  tokensFile?: string;
  /**
   * The ingress or proxies in front of the API (addresses or CIDRs): their X-Forwarded-For names
   * the client, for rate limits and logs. None by default: the socket's address counts.
   */
  trustedProxies?: string[];
  /** When set, /metrics answers only a bearer token with this SHA-256 hex digest (the scraper's). */
  metricsBearerSha256?: string;
  /** The approver of an unplanned failover must not be its requester. */
  twoPersonRule?: boolean;
  /** Requests per token per minute before 429 (default 600). */
  rateLimitPerMinute?: number;
  /** Requests without a valid credential per client address per minute before 429 (default 60). */
  unauthenticatedRateLimitPerMinute?: number;
  /** Accept OIDC JWTs from one issuer besides the static tokens. */
  oidc?: OidcConfig;
  /** The status board in the browser (served at /board). */
  board?: BoardConfig;
}

export interface StaticToken {
  name: string;
  sha256: string;
  roles: Role[];
  /** RFC 3339 time after which the token is refused. */
  expiresAt?: string;
}

export interface ApiTlsConfig {
  /** The server's certificate, its chain after it. */
  certFile: string;
  keyFile: string;
}

export interface BoardConfig {
  /** How long a sign-in lasts, in hours (default 8; never past an OIDC token's own expiry). */
  sessionHours?: number;
  /** The Temporal web UI, to link each operation to its workflow (e.g. https://temporal.example/). */
  temporalUiUrl?: string;
}

export interface OidcConfig {
  issuer: string;
  /** The `aud` the tokens must carry (the client id Pivot is registered as). */
  audience: string;
  /** The issuer's keys: a JWKS URL (fetched and cached), or a pinned JWKS file. Exactly one. */
  jwksUri?: string;
  jwksFile?: string;
  /**
   * The claim shown as the person's name (default `sub`). Only shown: the principal the audit and
   * the two-person rule compare is always `oidc:<issuer>#<sub>`, since `sub` is the one claim an
   * issuer never lets a user change.
   */
  usernameClaim?: string;
  /** The claim listing the person's groups (default `groups`). */
  groupsClaim?: string;
  /** Roles granted per group. A token with no mapped group authenticates with no role (403). */
  groupRoles: Record<string, Role[]>;
}

export interface NetworkFenceSettings {
  className?: string;
  secret?: { name: string; namespace: string };
}

/** A business line or team: it owns the applications in its namespaces (docs/tenancy.md). */
export interface TenantConfig {
  name: string;
  /** Namespaces whose applications it owns, unless a runbook names its tenant itself. */
  namespaces?: string[];
}

export interface AuditConfig {
  /** How long the API's audit log keeps a record, in days (default 400). */
  retentionDays?: number;
}

export interface PivotConfig {
  apiVersion: typeof CONFIG_API_VERSION;
  kind: typeof CONFIG_KIND;
  sites: SiteConfig[];
  /**
   * StorageClass equivalences between sites: each entry names, per site, the class that holds the
   * same replicated volumes there. A class absent from every entry maps to the same name.
   */
  storageClassMap: Array<Record<string, string>>;
  temporal: {
    address: string;
    namespace: string;
    tls?: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string };
    /** A file holding a Temporal Cloud API key (sent over TLS only). */
    apiKeyFile?: string;
  };
  /** Exactly one of redisUrl / sentinel. */
  witness: {
    /** redis:// or rediss:// (TLS); never with a password in it: use passwordFile. */
    redisUrl?: string;
    /** The file holding the Redis password (of the master and replicas, with Sentinel). */
    passwordFile?: string;
    /** TLS to Redis (and to the sentinels): a private CA, a client pair for mTLS, the server name. */
    tls?: { caFile?: string; certFile?: string; keyFile?: string; serverName?: string };
    sentinel?: {
      masterName: string;
      sentinels: string[];
      /** The file holding the sentinels' own password (`requirepass` on the sentinels). */
      passwordFile?: string;
      /** Replicas that must acknowledge each change of epoch, lock or fence (default 1). */
      waitForReplicas?: number;
      /** How long to wait for them before the change is reported not durable (default 5000). */
      waitTimeoutMs?: number;
    };
  };
  api: ApiConfig;
  runbooks: { dir: string };
  /** Alert hooks (Grafana, Alertmanager): how deliveries authenticate, and the rules they trigger. */
  alerts?: AlertsConfig;
  /** Drills: how long their evidence is kept. */
  audit?: AuditConfig;
  tenants?: TenantConfig[];
  drills?: {
    retentionDays?: number;
    /** A drill that runs a real switchover and failback waits for an approval (default required). */
    switchoverApproval?: 'required' | 'none';
  };
  /** Only in the lab's configuration: the simulated array, whose write counts measure data loss. */
  lab?: { storageSimulatorUrl: string };
}

/** How a hook's deliveries authenticate: any one configured method suffices. */
export interface HookAuth {
  /** HMAC-SHA256 of the body (Grafana's X-Grafana-Alerting-Signature), keyed by the file's content. */
  hmac?: {
    secretFile: string;
    /** When set, the signed string is `<unix seconds>:<body>` and the timestamp travels in this header. */
    timestampHeader?: string;
    /** How old (or early) a signed timestamp may be (default 300). */
    maxSkewSeconds?: number;
  };
  /** A bearer token, by its SHA-256 digest. */
  bearerSha256?: string;
  /** HTTP basic: the user and the SHA-256 digest of the password. */
  basic?: { username: string; passwordSha256: string };
}

export interface AlertRule {
  name: string;
  /** Labels the alert must carry (equality). */
  match: Record<string, string>;
  operation: 'failover' | 'switchover';
  /** Exactly one of apps / site. */
  apps?: string[];
  site?: string;
  to?: string;
  /** The alert must keep firing this long before anything starts (a resolve cancels). */
  holdDownSeconds: number;
  /** After an operation started, the rule does not start another for this long. */
  coolDownSeconds: number;
}

export interface AlertsConfig {
  grafana?: HookAuth;
  alertmanager?: HookAuth;
  rules: AlertRule[];
}
