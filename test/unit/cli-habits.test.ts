/**
 * The CLI's habits that need no lab: `--version`, shell completion (run in a real bash), contexts
 * (the file, its validation, which API and token a command uses), `-o` on a local read command,
 * the refusal to change production without a terminal or `--yes`, and riding out an API that
 * does not answer. The lab suite (test/lab/cli.test.ts) drives the same habits against the API.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ApiError, ApiUnreachableError, apiTarget } from '../../cli/api-client.ts';
import { loadCliConfig } from '../../cli/contexts.ts';
import { rideOut } from '../../cli/operation-commands.ts';
import { PIVOT_VERSION } from '../../common/version.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PIVOT = join(ROOT, 'bin', 'pivot.js');
const dir = mkdtempSync(join(tmpdir(), 'pivot-cli-habits-'));
/** No lab here: PIVOT_LAB_DIR points at an empty directory, so nothing falls back to one. */
const ENV = {
  ...process.env,
  NODE_OPTIONS: '',
  PIVOT_LAB_DIR: join(dir, 'no-lab'),
  PIVOT_CLI_CONFIG: join(dir, 'cli.yaml'),
  PIVOT_API_URL: '',
  PIVOT_TOKEN: '',
  PIVOT_CONTEXT: '',
};

function pivot(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [PIVOT, ...args],
      { cwd: ROOT, env: { ...ENV, ...env } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function bash(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', script], { cwd: ROOT, env: ENV }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

describe('pivot --version and completion', () => {
  it('prints the version of package.json', async () => {
    const r = await pivot(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `${PIVOT_VERSION}\n` });
  });

  it('completes commands, subcommands, flags and -o values in a real bash', async () => {
    const script = (await pivot(['completion', 'bash'])).stdout;
    writeFileSync(join(dir, 'completion.bash'), script);
    const complete = (...words: string[]) =>
      bash(
        `source ${join(dir, 'completion.bash')}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); ` +
          `COMP_CWORD=${words.length - 1}; _pivot_complete; echo "\${COMPREPLY[*]}"`,
      ).then((s) => s.trim().split(/\s+/).filter(Boolean));
    expect(await complete('pivot', 'dri')).toEqual(['drill']);
    expect(await complete('pivot', 'drill', 'schedule', 'de')).toEqual(['delete']);
    expect(await complete('pivot', 'failover', '--s')).toEqual(['--site']);
    expect(await complete('pivot', 'failover', '--y')).toEqual(['--yes']);
    expect(await complete('pivot', 'status', '-o', '')).toEqual(['table', 'json', 'yaml']);
    expect(await complete('pivot', 'config', 'use')).toEqual(['use-context']);
    // Hidden helpers are not offered.
    expect(await complete('pivot', '__')).toEqual([]);
  });

  it('zsh gets the same, through bashcompinit; an unknown shell is a usage error', async () => {
    const zsh = await pivot(['completion', 'zsh']);
    expect(zsh.stdout).toMatch(/^# pivot completion for zsh/);
    expect(zsh.stdout).toContain('bashcompinit');
    expect(zsh.stdout).toContain('complete -F _pivot_complete pivot');
    const fish = await pivot(['completion', 'fish']);
    expect(fish.code).toBe(2);
    expect(fish.stderr).toContain('no completion for fish');
  });
});

describe('contexts', () => {
  const config = join(dir, 'contexts.yaml');
  const tokenFile = join(dir, 'prod.token');
  const env = { PIVOT_CLI_CONFIG: config };

  it('adds, lists, switches and deletes contexts; the file holds where the token is, never the token', async () => {
    writeFileSync(tokenFile, 'secret-prod-token\n');
    chmodSync(tokenFile, 0o600);
    expect(
      (
        await pivot(
          ['config', 'set-context', 'prod', '--url', 'https://pivot.dr.example', '--token-file', tokenFile],
          env,
        )
      ).code,
    ).toBe(0);
    expect(
      (
        await pivot(
          [
            'config',
            'set-context',
            'test',
            '--url',
            'https://pivot-test.example',
            '--token-env',
            'PIVOT_TEST_TOKEN',
          ],
          env,
        )
      ).code,
    ).toBe(0);
    expect(await pivot(['config', 'current-context'], env)).toMatchObject({ code: 2 });
    expect((await pivot(['config', 'use-context', 'prod'], env)).code).toBe(0);
    expect(await pivot(['config', 'current-context'], env)).toMatchObject({ code: 0, stdout: 'prod\n' });
    const listed = await pivot(['config', 'get-contexts'], env);
    expect(listed.stdout).toMatch(/^CURRENT\s+NAME\s+URL\s+TOKEN/);
    expect(listed.stdout).toMatch(/^\*\s+prod\s+https:\/\/pivot\.dr\.example\s+file /m);
    const asYaml = parseYaml((await pivot(['config', 'get-contexts', '-o', 'yaml'], env)).stdout) as {
      currentContext: string;
      contexts: unknown[];
    };
    expect(asYaml.currentContext).toBe('prod');
    expect(asYaml.contexts).toHaveLength(2);
    const text = readFileSync(config, 'utf8');
    expect(text).not.toContain('secret-prod-token');
    expect(loadCliConfig(config).currentContext).toBe('prod');

    // A command names the current context's API, with the token read from its file.
    const target = apiTarget({ PIVOT_CLI_CONFIG: config });
    expect({ url: target.url, source: target.source, token: target.token('read') }).toEqual({
      url: 'https://pivot.dr.example',
      source: 'context',
      token: 'secret-prod-token',
    });
    // --context (PIVOT_CONTEXT) wins over the current one; PIVOT_TOKEN over the context's token.
    expect(
      apiTarget({ PIVOT_CLI_CONFIG: config, PIVOT_CONTEXT: 'test', PIVOT_TEST_TOKEN: 't' }).token('read'),
    ).toBe('t');
    expect(apiTarget({ PIVOT_CLI_CONFIG: config, PIVOT_TOKEN: 'override' }).token('read')).toBe('override');
    expect(() => apiTarget({ PIVOT_CLI_CONFIG: config, PIVOT_CONTEXT: 'test' }).token('read')).toThrow(
      'context test names no token I can read (PIVOT_TEST_TOKEN is not set)',
    );

    const unknown = await pivot(['--context', 'staging', 'status'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`no context "staging" in ${config}`);
    expect(unknown.stderr).toContain('next: known: prod, test');

    expect((await pivot(['config', 'delete-context', 'prod'], env)).code).toBe(0);
    expect(loadCliConfig(config)).toEqual({ contexts: [expect.objectContaining({ name: 'test' })] });
  });

  it('refuses a bad context and leaves the file as it was; a malformed file is named with what is wrong', async () => {
    const before = readFileSync(config, 'utf8');
    const bad = await pivot(['config', 'set-context', 'ftp', '--url', 'ftp://pivot.example'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('/contexts/1/url must match pattern');
    expect(readFileSync(config, 'utf8')).toBe(before);
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, 'contexts: [{ name: x }]\n');
    const r = await pivot(['status'], { PIVOT_CLI_CONFIG: broken });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${broken}: /contexts/0 must have required property 'url'`);
  });

  it('never falls back to a lab that is not there', async () => {
    expect(existsSync(ENV.PIVOT_LAB_DIR)).toBe(false);
    const r = await pivot(['status'], { PIVOT_CLI_CONFIG: join(dir, 'none.yaml') });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no Pivot API is named and no lab is set up here');
  });
});

describe('commands that change production', () => {
  it('refuse without a terminal unless --yes, before calling the API', async () => {
    // The API named here does not exist: had the command called it, the exit code would be 4.
    const env = { PIVOT_API_URL: 'http://127.0.0.1:9', PIVOT_TOKEN: 'x' };
    const cases = [
      ['failover', '--site', 'dc-a', '--reason', 'dc-a is down'],
      ['switchover', 'orders', '--reason', 'maintenance'],
      ['abort', 'orders'],
      ['skip', 'orders', '--step', 'promote-target', '--reason', 'done by hand'],
      ['drill', 'schedule', 'delete', 'weekly'],
    ];
    const runs = await Promise.all(cases.map((args) => pivot(args, env)));
    for (const [i, r] of runs.entries()) {
      expect({ args: cases[i], code: r.code }).toEqual({ args: cases[i], code: 2 });
      expect(r.stderr).toContain('this needs a confirmation, and no terminal is here to ask');
      expect(r.stderr).toContain('next: add --yes');
    }
    const yes = await pivot(['switchover', 'orders', '--yes', '--reason', 'maintenance'], env);
    expect(yes.code).toBe(4);
  });

  it('-o yaml and -o json print the same data (a local read command)', async () => {
    const runbook = join(ROOT, 'runbooks', 'orders.yaml');
    const [asJson, asYaml, bad] = await Promise.all([
      pivot(['runbook', 'validate', runbook, '-o', 'json']),
      pivot(['runbook', 'validate', runbook, '-o', 'yaml']),
      pivot(['runbook', 'validate', runbook, '-o', 'xml']),
    ]);
    const json = JSON.parse(asJson.stdout) as unknown;
    const yaml = parseYaml(asYaml.stdout) as unknown;
    expect(yaml).toEqual(json);
    expect(json).toEqual({ files: [expect.objectContaining({ valid: true })] });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("argument 'xml' is invalid. Allowed choices are table, json, yaml");
  });
});

describe('rideOut', () => {
  const noSleep = { sleep: () => Promise.resolve() };

  it('rides out an API that does not answer, then returns what it answers', async () => {
    let calls = 0;
    const value = await rideOut(() => {
      calls += 1;
      if (calls === 1)
        return Promise.reject(new ApiUnreachableError('http://api', new Error('ECONNREFUSED'), ''));
      if (calls === 2)
        return Promise.reject(new ApiError(503, { error: 'unavailable', message: 'restarting' }));
      if (calls === 3)
        return Promise.reject(new ApiError(429, { error: 'rate-limited', message: 'slow down' }));
      return Promise.resolve('report');
    }, noSleep);
    expect({ value, calls }).toEqual({ value: 'report', calls: 4 });
  });

  it('does not retry what retrying cannot fix, and gives up after its limit', async () => {
    let calls = 0;
    const denied = rideOut(() => {
      calls += 1;
      return Promise.reject(new ApiError(403, { error: 'forbidden', message: 'viewer may not' }));
    }, noSleep);
    await expect(denied).rejects.toThrow('viewer may not');
    expect(calls).toBe(1);
    const down = rideOut(() => Promise.reject(new ApiUnreachableError('http://api', new Error('down'), '')), {
      limitMs: -1,
      ...noSleep,
    });
    await expect(down).rejects.toThrow('does not answer');
  });
});
