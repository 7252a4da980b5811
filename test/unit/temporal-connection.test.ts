/**
 * The one Temporal connection builder every process uses: mTLS material and a private CA read from
 * files, the server name, an API key from a file (and then TLS, even without a CA), nothing of it
 * when the configuration names none; and both the API's client and the workers build with it.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { temporalConnectionOptions } from '../../common/temporal-connection.ts';
import { REPO_ROOT } from '../../lab/layout.ts';

const dir = mkdtempSync(join(tmpdir(), 'pivot-temporal-'));
const file = (name: string, content: string) => {
  writeFileSync(join(dir, name), content);
  return join(dir, name);
};

describe('temporalConnectionOptions', () => {
  it('connects in plain text only when the configuration asks for nothing else', () => {
    expect(temporalConnectionOptions({ address: 'temporal:7233', namespace: 'dr' })).toEqual({
      address: 'temporal:7233',
    });
  });

  it('reads the CA, the client pair and the server name for mTLS', () => {
    const options = temporalConnectionOptions({
      address: 'temporal.dr.example:7233',
      namespace: 'dr',
      tls: {
        caFile: file('ca.pem', 'CA'),
        certFile: file('client.pem', 'CERT'),
        keyFile: file('client-key.pem', 'KEY'),
        serverName: 'temporal.dr.example',
      },
    });
    expect(options.tls).toEqual({
      serverNameOverride: 'temporal.dr.example',
      serverRootCACertificate: Buffer.from('CA'),
      clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') },
    });
    expect(options.apiKey).toBeUndefined();
  });

  it('sends an API key from a file over TLS only, and refuses an empty one', () => {
    const options = temporalConnectionOptions({
      address: 'dr.a1b2c.tmprl.cloud:7233',
      namespace: 'dr.a1b2c',
      apiKeyFile: file('api-key', 'secret-key\n'),
    });
    expect(options).toEqual({ address: 'dr.a1b2c.tmprl.cloud:7233', tls: true, apiKey: 'secret-key' });
    expect(() =>
      temporalConnectionOptions({ address: 'x:7233', namespace: 'dr', apiKeyFile: file('empty', '\n') }),
    ).toThrow(/is empty/);
  });

  it('is the builder of both the API and the workers', () => {
    for (const path of ['api/operations.ts', 'worker/workers.ts']) {
      const source = readFileSync(join(REPO_ROOT, path), 'utf8');
      expect({ path, uses: /Connection\.connect\(temporalConnectionOptions\(/.test(source) }).toEqual({
        path,
        uses: true,
      });
    }
  });
});
