/** Loading PivotConfig: defaults and path resolution, and located errors for bad files. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, findConfig, loadConfig } from '../../config/load.ts';

const dir = mkdtempSync(join(tmpdir(), 'pivot-config-'));

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

const VALID = `apiVersion: pivot.dev/v1alpha1
kind: PivotConfig
sites:
  - name: dc-a
    kubeconfig: kube/a.yaml
    clientCidrs: [10.10.0.0/16]
  - name: dc-b
    kubeconfig: /etc/pivot/b.yaml
    context: b-admin
    clientCidrs: [10.20.0.0/16]
temporal: { address: "temporal:7233", namespace: pivot }
witness: { sentinel: { masterName: pivot, sentinels: ["s1:26379", "s2:26379", "s3:26379"] } }
`;

function problems(text: string): string[] {
  try {
    loadConfig(write('bad.yaml', text));
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('resolves relative paths against the file and fills defaults', () => {
    const config = loadConfig(write('pivot.yaml', VALID));
    expect(config.sites.map((s) => s.kubeconfig)).toEqual([join(dir, 'kube/a.yaml'), '/etc/pivot/b.yaml']);
    expect(config.sites[1]?.context).toBe('b-admin');
    expect(config.runbooks.dir).toBe(join(dir, 'runbooks'));
    expect(config.storageClassMap).toEqual([]);
    expect(config.witness.sentinel?.sentinels).toHaveLength(3);
  });

  it('locates an unknown field at its key', () => {
    expect(problems(VALID.replace('kind: PivotConfig', 'kind: PivotConfig\ncolour: blue'))).toEqual([
      '3:1: colour: unknown field',
    ]);
  });

  it('refuses a witness with both redisUrl and sentinel, and a bad CIDR, in one pass', () => {
    const text = VALID.replace('witness: {', 'witness: { redisUrl: "redis://x:6379",').replace(
      '10.20.0.0/16',
      '10.20.0.0/160',
    );
    const found = problems(text);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^10:\d+: sites\.1\.clientCidrs\.0: must match pattern/);
    expect(found[1]).toMatch(/^12:\d+: witness: set exactly one of redisUrl or sentinel$/);
  });

  it('reads alert hooks and rules, resolving the HMAC secret file against the config file', () => {
    const config = loadConfig(
      write(
        'alerts.yaml',
        `${VALID}alerts:
  grafana: { hmac: { secretFile: secrets/grafana-hmac, timestampHeader: X-Ts } }
  rules:
    - { name: dc-a-down, match: { alertname: DatacenterDown }, operation: failover, site: dc-a, holdDownSeconds: 60, coolDownSeconds: 600 }
api:
  listen: 0.0.0.0:8480
  twoPersonRule: true
  tokens: [{ name: oncall, sha256: ${'a'.repeat(64)}, roles: [operator, approver] }]
`,
      ),
    );
    expect(config.alerts?.grafana?.hmac?.secretFile).toBe(join(dir, 'secrets/grafana-hmac'));
    expect(config.alerts?.rules[0]).toMatchObject({ name: 'dc-a-down', site: 'dc-a' });
    expect(config.api.tokens?.[0]?.roles).toEqual(['operator', 'approver']);
  });

  it('refuses a rule naming both apps and a site, a token kept in clear, and an unknown role', () => {
    const found = problems(
      `${VALID}alerts:
  rules:
    - { name: both, match: { a: b }, operation: failover, site: dc-a, apps: [x], holdDownSeconds: 1, coolDownSeconds: 1 }
api:
  listen: 0.0.0.0:8480
  tokens: [{ name: oncall, sha256: my-secret-token, roles: [root] }]
`,
    );
    expect(found.join('\n')).toMatch(/alerts\.rules\.0: must match exactly one schema in oneOf/);
    expect(found.join('\n')).toMatch(/api\.tokens\.0\.sha256: must match pattern/);
    expect(found.join('\n')).toMatch(/api\.tokens\.0\.roles\.0: must be equal to one of the allowed values/);
  });

  it('reads OIDC settings, resolving a pinned JWKS file; refuses both or neither key source, and unknown roles', () => {
    const oidc = (keys: string, roles = '[operator]') =>
      `${VALID}api:\n  listen: 0.0.0.0:8480\n  oidc: { issuer: https://idp, audience: pivot, ${keys}groupRoles: { oncall: ${roles} } }\n`;
    const config = loadConfig(write('oidc.yaml', oidc('jwksFile: keys/jwks.json, ')));
    expect(config.api.oidc).toMatchObject({
      jwksFile: join(dir, 'keys', 'jwks.json'),
      groupRoles: { oncall: ['operator'] },
    });
    expect(problems(oidc('jwksFile: k.json, jwksUri: https://idp/certs, '))).toEqual([
      'api.oidc: set exactly one of jwksUri or jwksFile',
    ]);
    expect(problems(oidc(''))).toEqual(['api.oidc: set exactly one of jwksUri or jwksFile']);
    expect(problems(oidc('jwksUri: https://idp/certs, ', '[root]')).join('\n')).toMatch(
      /api\.oidc\.groupRoles\.oncall\.0: must be equal to one of the allowed values/,
    );
  });

  it("resolves Temporal's TLS files and API key file; refuses half a client pair and a JWKS URL in clear text", () => {
    const config = loadConfig(
      write(
        'tls.yaml',
        VALID.replace(
          'temporal: { address: "temporal:7233", namespace: pivot }',
          'temporal: { address: "temporal:7233", namespace: pivot, apiKeyFile: secrets/key, tls: { caFile: ca.pem, certFile: /etc/pivot/c.pem, keyFile: k.pem, serverName: temporal.example } }',
        ),
      ),
    );
    expect(config.temporal).toEqual({
      address: 'temporal:7233',
      namespace: 'pivot',
      apiKeyFile: join(dir, 'secrets/key'),
      tls: {
        caFile: join(dir, 'ca.pem'),
        certFile: '/etc/pivot/c.pem',
        keyFile: join(dir, 'k.pem'),
        serverName: 'temporal.example',
      },
    });
    const half = problems(
      VALID.replace(
        'temporal: { address: "temporal:7233", namespace: pivot }',
        'temporal: { address: "temporal:7233", namespace: pivot, tls: { certFile: c.pem } }',
      ),
    );
    expect(half.join('\n')).toMatch(
      /temporal\.tls: must have property keyFile when property certFile is present/,
    );
    const clear = problems(
      `${VALID}api:\n  listen: 127.0.0.1:8480\n  oidc: { issuer: https://idp, audience: pivot, jwksUri: http://idp/certs, groupRoles: {} }\n`,
    );
    expect(clear.join('\n')).toMatch(/api\.oidc\.jwksUri: must match pattern "\^https:\/\/"/);
  });

  it("resolves the witness's password files and TLS; refuses a password in the URL, and neither source", () => {
    const config = loadConfig(
      write(
        'witness.yaml',
        VALID.replace(
          'witness: { sentinel: { masterName: pivot,',
          'witness: { passwordFile: secrets/redis, tls: { caFile: ca.pem }, sentinel: { passwordFile: /etc/s, masterName: pivot,',
        ),
      ),
    );
    expect(config.witness).toMatchObject({
      passwordFile: join(dir, 'secrets/redis'),
      tls: { caFile: join(dir, 'ca.pem') },
      sentinel: { passwordFile: '/etc/s', masterName: 'pivot' },
    });
    const inline = VALID.replace(/witness: .*\n/, 'witness: { redisUrl: "redis://:hunter2@witness:6379" }\n');
    expect(problems(inline).join('\n')).toMatch(/witness\.redisUrl: must match pattern/);
    expect(problems(VALID.replace(/witness: .*\n/, 'witness: { passwordFile: p }\n'))).toEqual([
      expect.stringMatching(/witness: set exactly one of redisUrl or sentinel$/),
    ]);
  });

  it("resolves the API's certificate and key; refuses one without the other, and a client CA", () => {
    const api = (tls: string) => `${VALID}api:\n  listen: 0.0.0.0:8443\n  tls: ${tls}\n`;
    expect(
      loadConfig(write('api-tls.yaml', api('{ certFile: tls/tls.crt, keyFile: /etc/pivot/tls.key }'))).api,
    ).toEqual({
      listen: '0.0.0.0:8443',
      tls: { certFile: join(dir, 'tls/tls.crt'), keyFile: '/etc/pivot/tls.key' },
    });
    expect(loadConfig(write('api-plain.yaml', VALID)).api).toEqual({ listen: '127.0.0.1:8480' });
    expect(problems(api('{ certFile: tls.crt }'))).toEqual([
      '15:8: api.tls: set both certFile and keyFile (the certificate and its key), or no tls',
    ]);
    expect(problems(api('{ keyFile: tls.key }'))).toEqual([
      expect.stringMatching(/api\.tls: set both certFile and keyFile/),
    ]);
    expect(problems(api('{}'))).toEqual([expect.stringMatching(/api\.tls: set both certFile and keyFile/)]);
    expect(problems(api('{ certFile: c, keyFile: k, caFile: ca.pem }'))).toEqual([
      expect.stringMatching(/^15:\d+: api\.tls\.caFile: unknown field$/),
    ]);
  });

  it("reaches a site as the pod's ServiceAccount; refuses a site with both credentials or none", () => {
    const inCluster = VALID.replace('    kubeconfig: kube/a.yaml\n', '    inCluster: true\n');
    const config = loadConfig(write('in-cluster.yaml', inCluster));
    expect(config.sites[0]).toEqual({ name: 'dc-a', inCluster: true, clientCidrs: ['10.10.0.0/16'] });
    expect(config.sites[1]!.kubeconfig).toBe('/etc/pivot/b.yaml');
    const refusal = (text: string) => {
      try {
        loadConfig(write('credentials.yaml', text));
      } catch (err) {
        if (err instanceof ConfigError) return err.problems;
      }
      throw new Error('expected a ConfigError');
    };
    expect(
      refusal(
        VALID.replace('    kubeconfig: kube/a.yaml\n', '    kubeconfig: kube/a.yaml\n    inCluster: true\n'),
      ),
    ).toEqual(['site dc-a: set exactly one of kubeconfig or inCluster: true']);
    expect(refusal(VALID.replace('    kubeconfig: kube/a.yaml\n', ''))).toEqual([
      'site dc-a: set exactly one of kubeconfig or inCluster: true',
    ]);
  });

  it('refuses duplicate site names and YAML syntax errors', () => {
    expect(problems(VALID.replace('name: dc-b', 'name: dc-a'))).toEqual(['site dc-a is defined twice']);
    expect(problems('sites: [\n')[0]).toMatch(/^\d+:\d+: /);
  });
});

describe('findConfig', () => {
  it('prefers --config, then PIVOT_CONFIG, then the lab', () => {
    expect(findConfig('/a.yaml', { PIVOT_CONFIG: '/b.yaml' })).toEqual({
      file: '/a.yaml',
      source: '--config',
    });
    expect(findConfig(undefined, { PIVOT_CONFIG: '/b.yaml' })).toEqual({
      file: '/b.yaml',
      source: 'PIVOT_CONFIG',
    });
    expect(() => findConfig(undefined, { PIVOT_LAB_DIR: join(dir, 'no-lab') })).toThrow(ConfigError);
  });
});
