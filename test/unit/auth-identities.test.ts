/**
 * Who a credential names, without the lab: principals namespaced by their source, an OIDC person
 * by the subject the issuer never lets them change, static tokens that expire and that come and go
 * with their file, without a restart.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import { stringify } from 'yaml';
import { describePrincipal, OidcVerifier, TokenVerifier } from '../../api/auth.ts';
import type { StaticToken } from '../../config/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'pivot-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (token: string) => createHash('sha256').update(token).digest('hex');
const token = (name: string, roles: StaticToken['roles'], expiresAt?: string): StaticToken => ({
  name,
  sha256: sha(`secret-of-${name}`),
  roles,
  ...(expiresAt ? { expiresAt } : {}),
});

/** Writes the tokens file the way a Secret update does: a new file renamed over the old. */
function writeTokens(file: string, tokens: unknown): void {
  writeFileSync(`${file}.new`, typeof tokens === 'string' ? tokens : stringify(tokens));
  renameSync(`${file}.new`, file);
}

describe('static tokens', () => {
  it('name their principal token:<name>, and refuse one past its expiry with the time', () => {
    let now = Date.parse('2027-01-01T00:00:00Z');
    const v = new TokenVerifier(
      [token('oncall-bot', ['operator'], '2027-01-02T00:00:00Z')],
      undefined,
      () => now,
    );
    expect(v.verify('secret-of-oncall-bot')).toEqual({
      principal: { name: 'token:oncall-bot', roles: ['operator'] },
      expiresAtMs: Date.parse('2027-01-02T00:00:00Z'),
    });
    now = Date.parse('2027-01-02T00:00:01Z');
    expect(v.verify('secret-of-oncall-bot')).toEqual({
      refusal: 'the token of token:oncall-bot expired at 2027-01-02T00:00:00.000Z: ask for a new one',
    });
    expect(v.verify('not-a-token')).toEqual({});
  });

  it('come and go with their file, without a restart; a broken file keeps the tokens read before', () => {
    const file = join(dir, 'tokens.yaml');
    writeTokens(file, [token('alice', ['approver'])]);
    let now = 0;
    const warnings: string[] = [];
    const v = new TokenVerifier(
      [token('ci', ['viewer'])],
      file,
      () => now,
      (m) => warnings.push(m),
    );
    expect(v.verify('secret-of-alice').principal?.name).toBe('token:alice');
    expect(v.verify('secret-of-ci').principal?.name).toBe('token:ci');

    // Revoke alice, add bob: seen within a second.
    writeTokens(file, [token('bob', ['operator'])]);
    now += 1000;
    expect(v.verify('secret-of-alice')).toEqual({});
    expect(v.verify('secret-of-bob').principal?.name).toBe('token:bob');

    // Half-written or wrong: refused with a warning; bob stays.
    writeTokens(file, '- name: carol\n  sha256: nothex\n  roles: [operator]\n');
    now += 1000;
    expect(v.verify('secret-of-bob').principal?.name).toBe('token:bob');
    expect(warnings).toEqual([expect.stringContaining('/0/sha256 must match pattern')]);
    // A name the configuration already has would make two credentials one principal: refused.
    writeTokens(file, [token('ci', ['admin'])]);
    now += 1000;
    expect(v.verify('secret-of-bob').principal?.name).toBe('token:bob');
    expect(warnings.at(-1)).toContain('names also in api.tokens: ci');
  });

  it('refuse to start from a tokens file that does not load', () => {
    const file = join(dir, 'bad-tokens.yaml');
    writeTokens(file, 'name: not-a-list');
    expect(() => new TokenVerifier([], file)).toThrow(
      /api\.tokensFile .*bad-tokens\.yaml: \(list\) must be array/,
    );
    expect(() => new TokenVerifier([], join(dir, 'missing.yaml'))).toThrow(/ENOENT/);
  });
});

describe('OIDC identities', () => {
  const issuer = 'https://idp.example';
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwksFile = join(dir, 'jwks.json');
  let verifier: OidcVerifier;

  beforeAll(async () => {
    writeFileSync(
      jwksFile,
      JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }),
    );
    verifier = new OidcVerifier({
      issuer,
      audience: 'pivot',
      jwksFile,
      usernameClaim: 'preferred_username',
      groupRoles: { 'dr-managers': ['approver'] },
    });
  });

  const jwt = (claims: Record<string, unknown>, subject?: string) => {
    const signer = new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience('pivot')
      .setExpirationTime('5m');
    return (subject ? signer.setSubject(subject) : signer).sign(privateKey);
  };

  it('name a person by issuer and subject; the username is only shown', async () => {
    const before = await verifier.verify(
      await jwt({ preferred_username: 'alice', groups: ['dr-managers'] }, '42'),
    );
    const renamed = await verifier.verify(
      await jwt({ preferred_username: 'alice.smith', groups: ['dr-managers'] }, '42'),
    );
    expect(before.principal).toEqual({
      name: 'oidc:https://idp.example#42',
      display: 'alice',
      roles: ['approver'],
    });
    expect(renamed.principal?.name).toBe(before.principal?.name);
    expect(describePrincipal(renamed.principal!)).toBe('alice.smith (oidc:https://idp.example#42)');
  });

  it('never mixes with a static token of the same name', async () => {
    const oidc = await verifier.verify(await jwt({ preferred_username: 'alice' }, 'alice'));
    const tokens = new TokenVerifier([token('alice', ['admin'])]);
    expect(oidc.principal?.name).not.toBe(tokens.verify('secret-of-alice').principal?.name);
  });

  it('refuse a token without a subject', async () => {
    expect(await verifier.verify(await jwt({ preferred_username: 'alice' }))).toEqual({
      refusal: 'the token has no sub claim',
    });
  });
});
