/**
 * Finding and reading Pivot's configuration: `--config`, then `PIVOT_CONFIG`, then the running
 * lab's. The file is validated against CONFIG_SCHEMA (Ajv) with every error located by line and
 * column, like runbooks; relative paths in it are relative to the file.
 */
import { Ajv } from 'ajv';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { labLayout } from '../lab/layout.ts';
import { RunbookSourceMap } from '../runbook/source-map.ts';
import {
  CONFIG_API_VERSION,
  CONFIG_KIND,
  ROLES,
  type ApiConfig,
  type HookAuth,
  type PivotConfig,
} from './types.ts';

const nonEmpty = { type: 'string', minLength: 1 } as const;
/** TLS material in files (a private CA, a client pair for mTLS, the name to expect); a pair or nothing. */
const TLS_FILES = {
  type: 'object',
  additionalProperties: false,
  properties: { caFile: nonEmpty, certFile: nonEmpty, keyFile: nonEmpty, serverName: nonEmpty },
  dependencies: { certFile: ['keyFile'], keyFile: ['certFile'] },
};
/** The API's own certificate and key: both or no `tls` at all (a client CA is not a setting). */
const SERVER_TLS_FILES = {
  type: 'object',
  additionalProperties: false,
  required: ['certFile', 'keyFile'],
  properties: { certFile: nonEmpty, keyFile: nonEmpty },
} as const;
/** Static API tokens: in the configuration (`api.tokens`) or in `api.tokensFile`. */
export const TOKEN_LIST = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'sha256', 'roles'],
    properties: {
      name: nonEmpty,
      sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      roles: { type: 'array', minItems: 1, items: { enum: [...ROLES] } },
      // RFC 3339 with a zone: "2027-03-31T00:00:00Z".
      expiresAt: {
        type: 'string',
        pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2})$',
      },
    },
  },
} as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

const hookAuth = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    hmac: {
      type: 'object',
      additionalProperties: false,
      required: ['secretFile'],
      properties: {
        secretFile: nonEmpty,
        timestampHeader: nonEmpty,
        maxSkewSeconds: { type: 'number', minimum: 1 },
      },
    },
    bearerSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    basic: {
      type: 'object',
      additionalProperties: false,
      required: ['username', 'passwordSha256'],
      properties: { username: nonEmpty, passwordSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
    },
  },
} as const;

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'sites', 'temporal', 'witness'],
  properties: {
    apiVersion: { const: CONFIG_API_VERSION },
    kind: { const: CONFIG_KIND },
    sites: {
      type: 'array',
      minItems: 2,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'clientCidrs'],
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
          kubeconfig: nonEmpty,
          context: nonEmpty,
          inCluster: { type: 'boolean' },
          region: nonEmpty,
          clientCidrs: {
            type: 'array',
            minItems: 1,
            items: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}(/\\d{1,2})?$' },
          },
          networkFence: {
            type: 'object',
            additionalProperties: false,
            properties: {
              className: nonEmpty,
              secret: {
                type: 'object',
                additionalProperties: false,
                required: ['name', 'namespace'],
                properties: { name: nonEmpty, namespace: nonEmpty },
              },
            },
          },
        },
      },
    },
    storageClassMap: { type: 'array', items: stringMap },
    temporal: {
      type: 'object',
      additionalProperties: false,
      required: ['address', 'namespace'],
      properties: {
        address: nonEmpty,
        namespace: nonEmpty,
        tls: TLS_FILES,
        apiKeyFile: nonEmpty,
      },
    },
    witness: {
      type: 'object',
      additionalProperties: false,
      oneOf: [
        { required: ['redisUrl'], properties: { redisUrl: true } },
        { required: ['sentinel'], properties: { sentinel: true } },
      ],
      properties: {
        // No credentials in the URL: a password lives in passwordFile.
        redisUrl: { type: 'string', pattern: '^rediss?://[^@/]+(/[0-9]*)?$' },
        passwordFile: nonEmpty,
        tls: TLS_FILES,
        sentinel: {
          type: 'object',
          additionalProperties: false,
          required: ['masterName', 'sentinels'],
          properties: {
            masterName: nonEmpty,
            sentinels: { type: 'array', minItems: 1, items: nonEmpty },
            passwordFile: nonEmpty,
            waitForReplicas: { type: 'integer', minimum: 0, maximum: 10 },
            waitTimeoutMs: { type: 'integer', minimum: 100, maximum: 60000 },
          },
        },
      },
    },
    api: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: nonEmpty,
        tls: SERVER_TLS_FILES,
        twoPersonRule: { type: 'boolean' },
        rateLimitPerMinute: { type: 'integer', minimum: 1 },
        unauthenticatedRateLimitPerMinute: { type: 'integer', minimum: 1 },
        board: {
          type: 'object',
          additionalProperties: false,
          properties: {
            sessionHours: { type: 'number', exclusiveMinimum: 0, maximum: 24 },
            temporalUiUrl: { type: 'string', pattern: '^https?://' },
          },
        },
        oidc: {
          type: 'object',
          additionalProperties: false,
          required: ['issuer', 'audience', 'groupRoles'],
          properties: {
            issuer: nonEmpty,
            audience: nonEmpty,
            // The keys that sign every credential: never fetched in clear text.
            jwksUri: { type: 'string', pattern: '^https://' },
            jwksFile: nonEmpty,
            usernameClaim: nonEmpty,
            groupsClaim: nonEmpty,
            groupRoles: {
              type: 'object',
              additionalProperties: { type: 'array', minItems: 1, items: { enum: [...ROLES] } },
            },
          },
        },
        tokens: TOKEN_LIST,
        tokensFile: nonEmpty,
        metricsBearerSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        trustedProxies: {
          type: 'array',
          items: { type: 'string', pattern: '^[0-9a-fA-F:.]+(/\\d{1,3})?$' },
        },
      },
    },
    runbooks: { type: 'object', additionalProperties: false, properties: { dir: nonEmpty } },
    tenants: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
          namespaces: { type: 'array', items: nonEmpty },
        },
      },
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      properties: { retentionDays: { type: 'integer', minimum: 1, maximum: 3650 } },
    },
    drills: {
      type: 'object',
      additionalProperties: false,
      properties: {
        retentionDays: { type: 'integer', minimum: 1, maximum: 3650 },
        switchoverApproval: { enum: ['required', 'none'] },
      },
    },
    alerts: {
      type: 'object',
      additionalProperties: false,
      required: ['rules'],
      properties: {
        grafana: hookAuth,
        alertmanager: hookAuth,
        rules: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'match', 'operation', 'holdDownSeconds', 'coolDownSeconds'],
            properties: {
              name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
              match: { ...stringMap, minProperties: 1 },
              operation: { enum: ['failover', 'switchover'] },
              apps: { type: 'array', minItems: 1, items: nonEmpty },
              site: nonEmpty,
              to: nonEmpty,
              holdDownSeconds: { type: 'number', minimum: 0 },
              coolDownSeconds: { type: 'number', minimum: 0 },
            },
            oneOf: [
              { required: ['apps'], properties: { apps: true } },
              { required: ['site'], properties: { site: true } },
            ],
          },
        },
      },
    },
    lab: {
      type: 'object',
      additionalProperties: false,
      required: ['storageSimulatorUrl'],
      properties: { storageSimulatorUrl: nonEmpty },
    },
  },
} as const;

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
    readonly hint: string,
  ) {
    super(
      `${file}: ${problems.length === 1 ? problems[0] : `${problems.length} problems:\n  ${problems.join('\n  ')}`}`,
    );
    this.name = 'ConfigError';
  }
}

const validate = new Ajv({ allErrors: true, strict: true }).compile(CONFIG_SCHEMA);

/** Which configuration file a command uses, and why. */
export function findConfig(
  explicit?: string,
  env: NodeJS.ProcessEnv = process.env,
): { file: string; source: string } {
  if (explicit) return { file: resolve(explicit), source: '--config' };
  if (env['PIVOT_CONFIG']) return { file: resolve(env['PIVOT_CONFIG']), source: 'PIVOT_CONFIG' };
  const lab = labLayout(env).configFile;
  if (existsSync(lab)) return { file: lab, source: 'the lab' };
  throw new ConfigError(
    '(no configuration)',
    ['no configuration found'],
    'pass --config FILE, set PIVOT_CONFIG, or start the lab with `pivot lab up`',
  );
}

export function loadConfig(file: string): PivotConfig {
  if (!existsSync(file)) throw new ConfigError(file, ['the file does not exist'], 'check the path');
  const text = readFileSync(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const map = new RunbookSourceMap(doc.contents, lines);
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const at = map.position(e.pos[0]);
        return `${at.line}:${at.column}: ${e.message.split('\n')[0]}`;
      }),
      'fix the YAML syntax',
    );
  }
  const value: unknown = doc.toJS();
  if (!validate(value)) {
    const problems = (validate.errors ?? []).map((e) => {
      const path = e.instancePath
        .split('/')
        .slice(1)
        .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
      const extra = e.keyword === 'additionalProperties' ? String(e.params['additionalProperty']) : undefined;
      const at = map.locate(extra ? [...path, extra] : path, extra ? 'key' : 'value');
      const where = [...path, ...(extra ? [extra] : [])].join('.') || '(document)';
      const message =
        extra !== undefined
          ? 'unknown field'
          : where === 'witness' && (e.keyword === 'oneOf' || e.keyword === 'required')
            ? 'set exactly one of redisUrl or sentinel'
            : where === 'api.tls' && e.keyword === 'required'
              ? 'set both certFile and keyFile (the certificate and its key), or no tls'
              : (e.message ?? 'invalid');
      return `${at.line}:${at.column}: ${where}: ${message}`;
    });
    // oneOf reports each branch it tried too: one line for the witness is enough.
    problems.splice(0, problems.length, ...new Set(problems));
    throw new ConfigError(file, problems, `see docs/config.md for the format`);
  }
  const config = value as PivotConfig;
  const base = dirname(file);
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  const names = config.sites.map((s) => s.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw new ConfigError(file, [`site ${dup} is defined twice`], 'give every site a unique name');
  const uncredentialed = config.sites.filter((s) => !s.kubeconfig === !s.inCluster);
  if (uncredentialed.length > 0) {
    throw new ConfigError(
      file,
      uncredentialed.map((s) => `site ${s.name}: set exactly one of kubeconfig or inCluster: true`),
      "kubeconfig: a file with this site's credentials; inCluster: the pod's ServiceAccount, for a process in that site's cluster",
    );
  }
  const oidc = config.api?.oidc;
  if (oidc && !oidc.jwksUri === !oidc.jwksFile) {
    throw new ConfigError(
      file,
      ['api.oidc: set exactly one of jwksUri or jwksFile'],
      "jwksUri: the issuer's JWKS URL; jwksFile: a pinned copy of its keys",
    );
  }
  return {
    ...config,
    storageClassMap: config.storageClassMap ?? [],
    api: absApi(config.api ?? { listen: '127.0.0.1:8480' }, abs),
    sites: config.sites.map((s) => (s.kubeconfig ? { ...s, kubeconfig: abs(s.kubeconfig) } : s)),
    temporal: absTemporal(config.temporal, abs),
    witness: absWitness(config.witness, abs),
    runbooks: { dir: abs(config.runbooks?.dir ?? 'runbooks') },
    ...(config.alerts
      ? {
          alerts: {
            ...config.alerts,
            ...(config.alerts.grafana ? { grafana: absHmac(config.alerts.grafana, abs) } : {}),
            ...(config.alerts.alertmanager ? { alertmanager: absHmac(config.alerts.alertmanager, abs) } : {}),
          },
        }
      : {}),
  };
}

function absTls<T extends Record<string, string | undefined>>(tls: T, abs: (p: string) => string): T {
  return Object.fromEntries(
    Object.entries(tls).map(([k, v]) => [k, k === 'serverName' || v === undefined ? v : abs(v)]),
  ) as T;
}

function absWitness(w: PivotConfig['witness'], abs: (p: string) => string): PivotConfig['witness'] {
  return {
    ...w,
    ...(w.passwordFile ? { passwordFile: abs(w.passwordFile) } : {}),
    ...(w.tls ? { tls: absTls(w.tls, abs) } : {}),
    ...(w.sentinel?.passwordFile
      ? { sentinel: { ...w.sentinel, passwordFile: abs(w.sentinel.passwordFile) } }
      : {}),
  };
}

function absTemporal(t: PivotConfig['temporal'], abs: (p: string) => string): PivotConfig['temporal'] {
  const tls = t.tls ? absTls(t.tls, abs) : undefined;
  return { ...t, ...(tls ? { tls } : {}), ...(t.apiKeyFile ? { apiKeyFile: abs(t.apiKeyFile) } : {}) };
}

function absApi(api: ApiConfig, abs: (p: string) => string): ApiConfig {
  return {
    ...api,
    ...(api.oidc?.jwksFile ? { oidc: { ...api.oidc, jwksFile: abs(api.oidc.jwksFile) } } : {}),
    ...(api.tls ? { tls: { certFile: abs(api.tls.certFile), keyFile: abs(api.tls.keyFile) } } : {}),
    ...(api.tokensFile ? { tokensFile: abs(api.tokensFile) } : {}),
  };
}

function absHmac(auth: HookAuth, abs: (p: string) => string): HookAuth {
  return auth.hmac ? { ...auth, hmac: { ...auth.hmac, secretFile: abs(auth.hmac.secretFile) } } : auth;
}
