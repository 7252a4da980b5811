/**
 * The API over HTTPS (api/tls.ts): a private CA and two server certificates made with openssl; the
 * pair is served from a Kubernetes-style secret volume (files behind a `..data` symlink swapped
 * atomically), reloaded in place when it changes, kept when the new pair does not load. TLS 1.1 and
 * plain HTTP are refused. The board's cookie is Secure over HTTPS; the CLI trusts a private CA.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { get as httpGet, type Server as HttpServer } from 'node:http';
import { get as httpsGet } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { Writable } from 'node:stream';
import express from 'express';
import { pino } from 'pino';
import { cookieFor, overHttps } from '../../api/board/sessions.ts';
import { createHttpsApiServer, TlsFilesError, type HttpsApiServer } from '../../api/tls.ts';
import { ApiUnreachableError, apiTarget, PivotApi } from '../../cli/api-client.ts';
import { waitUntil } from '../../common/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'pivot-api-tls-'));
const openssl = (...args: string[]) => execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'pipe' });
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A server certificate for 127.0.0.1 with this serial, signed by the test CA. */
function serverCert(name: string, serial: string): { cert: string; key: string } {
  openssl('req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=127.0.0.1');
  openssl(
    'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${serial}`,
    '-days', '2', '-extfile', 'server.ext', '-out', `${name}.pem`,
  ); // prettier-ignore
  return {
    cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}

let ca: string;
let first: { cert: string; key: string };
let second: { cert: string; key: string };

/** The mounted secret: tls.crt and tls.key are symlinks into `..data`, itself a symlink to a version. */
const volume = join(dir, 'secret');
const files = { certFile: join(volume, 'tls.crt'), keyFile: join(volume, 'tls.key') };
let version = 0;
/** Publishes a new version of the secret the way the kubelet does: one atomic rename of `..data`. */
function publish(pair: { cert: string; key: string }): void {
  const name = `..v${++version}`;
  mkdirSync(join(volume, name));
  writeFileSync(join(volume, name, 'tls.crt'), pair.cert);
  writeFileSync(join(volume, name, 'tls.key'), pair.key);
  symlinkSync(name, join(volume, '..data_tmp'));
  renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
}

/** Every log line, parsed. */
const logged: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
const log = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logged.push(JSON.parse(line) as never);
      done();
    },
  }),
);

const app = express();
app.get('/hello', (req, res) => {
  res.set('Set-Cookie', cookieFor('s'.repeat(32), 60_000, overHttps(req))).json({ hello: 'world' });
});
app.get('/v1/apps', (req, res) => {
  res.json({ apps: [], observedAt: 'now', auth: req.get('authorization') });
});
app.post('/v1/operations', express.json(), (req, res) => {
  res.status(202).json({ echoed: req.body as unknown });
});

let https: HttpsApiServer;
let port: number;

/** One request on a fresh connection (no keep-alive: a reused connection keeps its certificate). */
function fetchServed(): Promise<{ serial: string; fingerprint256: string; body: string; cookie: string }> {
  return new Promise((resolve, reject) => {
    httpsGet({ host: '127.0.0.1', port, path: '/hello', ca, agent: false }, (res) => {
      const peer = (res.socket as TLSSocket).getPeerCertificate();
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({
          serial: peer.serialNumber,
          fingerprint256: peer.fingerprint256,
          body,
          cookie: String(res.headers['set-cookie']),
        }),
      );
    }).on('error', reject);
  });
}

/** A bare TLS handshake offering at most `maxVersion`: the protocol agreed on. */
function handshake(maxVersion: 'TLSv1.1' | 'TLSv1.2'): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    // SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal is then the server's.
    const options = {
      host: '127.0.0.1',
      port,
      ca,
      maxVersion,
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT@SECLEVEL=0',
    } as const;
    const socket = tlsConnect(options, () => {
      const protocol = socket.getProtocol() ?? '?';
      socket.end();
      resolve(protocol);
    });
    socket.on('error', reject);
  });
}

const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;

beforeAll(async () => {
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl(
    'req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=pivot test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ); // prettier-ignore
  ca = readFileSync(join(dir, 'ca.pem'), 'utf8');
  first = serverCert('first', '1001');
  second = serverCert('second', '2002');
  mkdirSync(volume);
  publish(first);
  symlinkSync('..data/tls.crt', files.certFile);
  symlinkSync('..data/tls.key', files.keyFile);
  https = await createHttpsApiServer(app, files, { log, checkEveryMs: 100 });
  await new Promise<void>((resolve) => https.server.listen(0, '127.0.0.1', resolve));
  port = (https.server.address() as AddressInfo).port;
});

afterAll(async () => {
  await https?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the API over HTTPS', () => {
  it('serves the configured certificate to a client that trusts the CA, with a Secure cookie', async () => {
    const served = await fetchServed();
    expect(served.serial).toBe('1001');
    expect(served.fingerprint256).toBe(new X509Certificate(first.cert).fingerprint256);
    expect(JSON.parse(served.body)).toEqual({ hello: 'world' });
    expect(served.cookie).toMatch(/; Secure/);
    expect(https.current().serial).toBe(serialOf(first.cert));
    expect(logged).toContainEqual(expect.objectContaining({ msg: 'api tls certificate loaded' }));
  });

  it('refuses TLS 1.1 and plain HTTP on the same port', async () => {
    await expect(handshake('TLSv1.2')).resolves.toBe('TLSv1.2');
    // The server's alert: protocol_version.
    await expect(handshake('TLSv1.1')).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    });

    const plain = await new Promise<string>((resolve) => {
      httpGet({ host: '127.0.0.1', port, path: '/hello', agent: false }, (res) => {
        res.resume();
        resolve(`answered ${res.statusCode}`);
      }).on('error', (err) => resolve(`failed: ${err.message}`));
    });
    expect(plain).toBe('failed: socket hang up');
  });

  it('serves a new pair after an atomic swap of the secret volume, with no restart', async () => {
    const listening = https.server.address();
    publish(second);
    await waitUntil(
      'the second certificate to be served',
      async () => {
        const served = await fetchServed();
        return served.serial === '2002' || `serving ${served.serial}`;
      },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    expect((await fetchServed()).fingerprint256).toBe(new X509Certificate(second.cert).fingerprint256);
    expect(https.server.address()).toEqual(listening);
    expect(logged).toContainEqual(
      expect.objectContaining({
        msg: 'api tls certificate reloaded',
        certificate: expect.objectContaining({ serial: '2002' }) as unknown,
        previous: expect.objectContaining({ serial: '1001' }) as unknown,
      }),
    );
  });

  it('keeps serving the last good pair when the new one does not load, and warns once', async () => {
    const warnings = () => logged.filter((l) => l.level === 40);
    // A half-written key: the first certificate with a key cut off mid-way.
    publish({ cert: first.cert, key: first.key.slice(0, 60) });
    expect(await https.check()).toBe('refused');
    expect(await https.check()).toBe('refused');
    expect((await fetchServed()).serial).toBe('2002');
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({
      msg: expect.stringContaining('api tls certificate not reloaded') as unknown,
      keyFile: files.keyFile,
      serving: expect.objectContaining({ serial: '2002' }) as unknown,
    });
    // A key that is whole but not the certificate's: refused too.
    publish({ cert: first.cert, key: second.key });
    expect(await https.check()).toBe('refused');
    expect(String(warnings()[1]?.['reason'])).toMatch(/key values mismatch/);
    expect((await fetchServed()).serial).toBe('2002');
    // Once the pair is right, it is served.
    publish(first);
    await waitUntil(
      'the first certificate to be served again',
      async () => (await fetchServed()).serial === '1001',
      {
        timeoutMs: 10_000,
        intervalMs: 50,
      },
    );
    // Still no TLS 1.1 after a reload.
    await expect(handshake('TLSv1.1')).rejects.toMatchObject({
      code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
    });
    await expect(handshake('TLSv1.2')).resolves.toBe('TLSv1.2');
  });

  it('does not start without a usable pair', async () => {
    const broken = join(dir, 'broken.key');
    writeFileSync(broken, 'not a key\n');
    await expect(
      createHttpsApiServer(app, { certFile: files.certFile, keyFile: broken }, { log }),
    ).rejects.toThrow(TlsFilesError);
    await expect(
      createHttpsApiServer(app, { certFile: join(dir, 'missing.pem'), keyFile: broken }, { log }),
    ).rejects.toThrow(/api\.tls: .*missing\.pem/);
  });
});

describe('the board cookie over plain HTTP', () => {
  let plain: HttpServer;
  beforeAll(async () => {
    plain = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => plain.once('listening', resolve));
  });
  afterAll(() => new Promise((resolve) => plain.close(resolve)));

  it('is Secure only when the ingress that terminated TLS says so', async () => {
    const cookie = (headers: Record<string, string>) =>
      new Promise<string>((resolve, reject) => {
        const { port: plainPort } = plain.address() as AddressInfo;
        httpGet({ host: '127.0.0.1', port: plainPort, path: '/hello', headers, agent: false }, (res) => {
          res.resume();
          resolve(String(res.headers['set-cookie']));
        }).on('error', reject);
      });
    expect(await cookie({})).not.toMatch(/Secure/);
    expect(await cookie({ 'x-forwarded-proto': 'http' })).not.toMatch(/Secure/);
    expect(await cookie({ 'x-forwarded-proto': 'https' })).toMatch(/; Secure/);
  });
});

describe('the CLI against an https API with a private CA', () => {
  const env = (more: NodeJS.ProcessEnv) => ({
    PIVOT_CLI_CONFIG: join(dir, 'no-cli.yaml'),
    PIVOT_API_URL: `https://127.0.0.1:${port}`,
    PIVOT_TOKEN: 'secret',
    ...more,
  });

  it('trusts the CA named by PIVOT_CA_FILE, for reads and for changes', async () => {
    const api = new PivotApi(apiTarget(env({ PIVOT_CA_FILE: join(dir, 'ca.pem') })));
    expect(await api.apps()).toMatchObject({ apps: [], auth: 'Bearer secret' });
    expect(await api.start({ operation: 'switchover', apps: ['orders'], reason: 'tls test' })).toEqual({
      echoed: { operation: 'switchover', apps: ['orders'], reason: 'tls test' },
    });
  });

  it("trusts a context's caFile", async () => {
    const contexts = join(dir, 'cli.yaml');
    writeFileSync(
      contexts,
      `current-context: prod\ncontexts:\n  - { name: prod, url: "https://127.0.0.1:${port}", tokenEnv: PROD_TOKEN, caFile: ${join(dir, 'ca.pem')} }\n`,
    );
    const target = apiTarget({ PIVOT_CLI_CONFIG: contexts, PROD_TOKEN: 'prod' });
    expect(target.ca).toBe(ca);
    expect(await new PivotApi(target).apps()).toMatchObject({ auth: 'Bearer prod' });
  });

  it('without it, says the certificate is not trusted and how to name the CA', async () => {
    const err = await new PivotApi(apiTarget(env({}))).apps().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiUnreachableError);
    expect((err as ApiUnreachableError).hint).toMatch(/not trusted.*--ca-file/);
  });

  it('refuses a CA file that is not a certificate', () => {
    expect(() => apiTarget(env({ PIVOT_CA_FILE: join(dir, 'ca.key') }))).toThrow(/holds no PEM certificate/);
  });
});
