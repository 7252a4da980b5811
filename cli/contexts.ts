/**
 * Contexts: several Pivot installations (production, a test installation, the lab) from one
 * workstation, as kubectl's contexts. The file (`$PIVOT_CLI_CONFIG`, default
 * `~/.config/pivot/cli.yaml`) names each installation's API and where its token is: a file or an
 * environment variable, never the token itself.
 *
 *   current-context: prod
 *   contexts:
 *     - name: prod
 *       url: https://pivot.dr.example
 *       tokenFile: ~/.config/pivot/prod.token
 *       caFile: ~/.config/pivot/prod-ca.pem    # optional: a private CA for an https url
 */
import { Ajv } from 'ajv';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { CliUsageError } from './output.ts';

export interface CliContext {
  name: string;
  url: string;
  tokenFile?: string;
  tokenEnv?: string;
  /** The CA (PEM) that signed the API's certificate, when it is not one the system trusts. */
  caFile?: string;
}

export interface CliConfig {
  currentContext?: string;
  contexts: CliContext[];
}

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    'current-context': { type: 'string' },
    contexts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'url'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' },
          url: { type: 'string', pattern: '^https?://' },
          tokenFile: { type: 'string' },
          tokenEnv: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
          caFile: { type: 'string', minLength: 1 },
        },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile(SCHEMA);

export function cliConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env['PIVOT_CLI_CONFIG'] ?? join(env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), 'pivot', 'cli.yaml')
  );
}

/** The contexts file, or an empty one when there is none; a malformed file is a usage error. */
export function loadCliConfig(path: string): CliConfig {
  if (!existsSync(path)) return { contexts: [] };
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
  } catch (err) {
    throw new CliUsageError(`${path}: not YAML (${(err as Error).message})`, `fix or remove ${path}`);
  }
  const file = checked(raw, path);
  return {
    ...(file['current-context'] ? { currentContext: file['current-context'] } : {}),
    contexts: file.contexts ?? [],
  };
}

interface CliConfigFile {
  'current-context'?: string;
  contexts?: CliContext[];
}

function checked(raw: unknown, path: string): CliConfigFile {
  if (!validate(raw)) {
    const why = (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
    throw new CliUsageError(`${path}: ${why}`, `fix it, or manage it with \`pivot config set-context\``);
  }
  return raw as CliConfigFile;
}

/** Writes the contexts file (owner-only); refuses, changing nothing, what a later load would refuse. */
export function saveCliConfig(path: string, config: CliConfig): void {
  const file = checked(
    {
      ...(config.currentContext ? { 'current-context': config.currentContext } : {}),
      contexts: config.contexts,
    },
    path,
  );
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, toYaml(file), { mode: 0o600 });
}

export function findContext(config: CliConfig, name: string, path: string): CliContext {
  const found = config.contexts.find((c) => c.name === name);
  if (!found) {
    throw new CliUsageError(
      `no context "${name}" in ${path}`,
      config.contexts.length
        ? `known: ${config.contexts.map((c) => c.name).join(', ')}`
        : 'add one with `pivot config set-context NAME --url URL --token-file FILE`',
    );
  }
  return found;
}

const expandHome = (p: string): string => (p.startsWith('~/') ? join(homedir(), p.slice(2)) : p);

/**
 * The token to send: `PIVOT_TOKEN`, else the file in `PIVOT_TOKEN_FILE`, else the context's file or
 * variable. A file is read at every call, so a rotated token is used at once. Undefined: none named.
 */
export function readToken(env: NodeJS.ProcessEnv, context?: CliContext): string | undefined {
  if (env['PIVOT_TOKEN']) return env['PIVOT_TOKEN'];
  const file = env['PIVOT_TOKEN_FILE'] ?? context?.tokenFile;
  if (file) {
    const path = resolve(expandHome(file));
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (err) {
      throw new CliUsageError(
        `cannot read the token file ${path}: ${(err as Error).message}`,
        'check the path (PIVOT_TOKEN_FILE or the context’s tokenFile)',
      );
    }
    if (!text) throw new CliUsageError(`the token file ${path} is empty`, 'write your API token into it');
    if ((statSync(path).mode & 0o077) !== 0) {
      process.stderr.write(`warning: ${path} is readable by others: chmod 600 ${path}\n`);
    }
    return text;
  }
  if (context?.tokenEnv) return env[context.tokenEnv] || undefined;
  return undefined;
}

/**
 * The CA certificates (PEM) to trust for an https API instead of the system's: the file in
 * `PIVOT_CA_FILE` (or `--ca-file`), else the context's `caFile`. Undefined: none named.
 */
export function readCaFile(env: NodeJS.ProcessEnv, context?: CliContext): string | undefined {
  const file = env['PIVOT_CA_FILE'] || context?.caFile;
  if (!file) return undefined;
  const path = resolve(expandHome(file));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliUsageError(
      `cannot read the CA file ${path}: ${(err as Error).message}`,
      'check the path (--ca-file, PIVOT_CA_FILE or the context’s caFile)',
    );
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CliUsageError(`the CA file ${path} holds no PEM certificate`, 'name the CA certificate file');
  }
  return text;
}
