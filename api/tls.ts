/**
 * The API over HTTPS (`api.tls`): TLS 1.2 at least, with the certificate and key read from files
 * that are watched and reloaded in place. Every few seconds both files are read again (through any
 * symlinks, so a Kubernetes secret volume's or cert-manager's atomic swap is seen like an edit);
 * when they changed and load as a pair, new connections get the new certificate
 * (`setSecureContext`), and the listener and open connections are untouched. A pair that does not
 * load (half written, a key that does not match) is refused with a warning, and the last good one
 * keeps serving until the files are right.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { RequestListener } from 'node:http';
import { createServer, type Server } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../common/logging.ts';
import type { ApiTlsConfig } from '../config/types.ts';

/** No TLS 1.0 or 1.1, whatever Node's defaults or flags say. */
export const MIN_TLS_VERSION = 'TLSv1.2';
/** How often the files are read again (ms). */
export const DEFAULT_RELOAD_CHECK_MS = 5_000;

export interface KeyPair {
  cert: Buffer;
  key: Buffer;
  /** The leaf certificate, for logs: serial, subject, expiry, fingerprint. */
  leaf: CertificateSummary;
}

export interface CertificateSummary {
  serial: string;
  subject: string;
  validTo: string;
  fingerprint256: string;
}

/** The files do not hold a usable certificate and key. */
export class TlsFilesError extends Error {
  constructor(
    readonly files: ApiTlsConfig,
    cause: unknown,
  ) {
    super(
      `api.tls: ${files.certFile} and ${files.keyFile} are not a usable certificate and key: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.name = 'TlsFilesError';
  }
}

/** Reads the pair and checks that it loads (PEM, and the key is the certificate's); throws TlsFilesError. */
export async function readKeyPair(files: ApiTlsConfig): Promise<KeyPair> {
  let cert: Buffer;
  let key: Buffer;
  try {
    [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
  } catch (err) {
    throw new TlsFilesError(files, err);
  }
  return keyPair(files, cert, key);
}

function keyPair(files: ApiTlsConfig, cert: Buffer, key: Buffer): KeyPair {
  try {
    createSecureContext({ cert, key, minVersion: MIN_TLS_VERSION });
    const x509 = new X509Certificate(cert);
    return {
      cert,
      key,
      leaf: {
        serial: x509.serialNumber,
        subject: x509.subject.replace(/\n/g, ', '),
        validTo: new Date(x509.validTo).toISOString(),
        fingerprint256: x509.fingerprint256,
      },
    };
  } catch (err) {
    throw new TlsFilesError(files, err);
  }
}

export type ReloadOutcome = 'unchanged' | 'reloaded' | 'refused';

export interface HttpsApiServer {
  /** Not yet listening: call `listen` on it. */
  readonly server: Server;
  /** The certificate being served. */
  current(): CertificateSummary;
  /** Reads the files now and reloads them if they changed (the watch does this every few seconds). */
  check(): Promise<ReloadOutcome>;
  /** Stops watching the files and closes the server (idle connections at once). */
  close(): Promise<void>;
}

export interface HttpsApiOptions {
  log: Logger;
  /** How often the files are read again (default 5 s). */
  checkEveryMs?: number;
}

/**
 * An HTTPS server for `handler` (the express app) with the pair in `files`, watched from now on.
 * Throws TlsFilesError when the files do not load: the API does not start without its certificate.
 */
export async function createHttpsApiServer(
  handler: RequestListener,
  files: ApiTlsConfig,
  options: HttpsApiOptions,
): Promise<HttpsApiServer> {
  const { log } = options;
  let served = await readKeyPair(files);
  let servedDigest = digestOf(served.cert, served.key);
  /** The digest of the last pair refused, so that a pair left broken is warned about once. */
  let refusedDigest: string | undefined;
  const server = createServer({ cert: served.cert, key: served.key, minVersion: MIN_TLS_VERSION }, handler);
  log.info({ certFile: files.certFile, certificate: served.leaf }, 'api tls certificate loaded');

  const refuse = (digest: string, err: unknown): ReloadOutcome => {
    if (digest !== refusedDigest) {
      log.warn(
        {
          certFile: files.certFile,
          keyFile: files.keyFile,
          reason:
            err instanceof TlsFilesError && err.cause instanceof Error ? err.cause.message : messageOf(err),
          serving: served.leaf,
        },
        'api tls certificate not reloaded: the previous one is still served',
      );
      refusedDigest = digest;
    }
    return 'refused';
  };
  const checkOnce = async (): Promise<ReloadOutcome> => {
    let cert: Buffer;
    let key: Buffer;
    try {
      [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
    } catch (err) {
      // A file missing or unreadable: warned about once per distinct error.
      return refuse(`unreadable: ${messageOf(err)}`, err);
    }
    const digest = digestOf(cert, key);
    if (digest === servedDigest) {
      refusedDigest = undefined;
      return 'unchanged';
    }
    let next: KeyPair;
    try {
      next = keyPair(files, cert, key);
    } catch (err) {
      return refuse(digest, err);
    }
    server.setSecureContext({ cert: next.cert, key: next.key, minVersion: MIN_TLS_VERSION });
    log.info(
      { certFile: files.certFile, certificate: next.leaf, previous: served.leaf },
      'api tls certificate reloaded',
    );
    served = next;
    servedDigest = digest;
    refusedDigest = undefined;
    return 'reloaded';
  };
  // One check at a time, and a check asked for during another runs after it (it must see the files
  // as they are now); asks that pile up meanwhile share it.
  let running: Promise<unknown> = Promise.resolve();
  let queued: Promise<ReloadOutcome> | undefined;
  const check = (): Promise<ReloadOutcome> => {
    if (!queued) {
      const next = running.then(() => {
        queued = undefined;
        return checkOnce();
      });
      queued = next;
      running = next.catch(() => undefined);
    }
    return queued;
  };

  const timer = setInterval(() => {
    check().catch((err: unknown) =>
      log.error({ reason: messageOf(err) }, 'api tls certificate check failed'),
    );
  }, options.checkEveryMs ?? DEFAULT_RELOAD_CHECK_MS);
  timer.unref();

  return {
    server,
    current: () => served.leaf,
    check,
    close: () => {
      clearInterval(timer);
      return new Promise<void>((resolve, reject) => {
        if (!server.listening) return resolve();
        server.close((err) => (err ? reject(err) : resolve()));
      });
    },
  };
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const digestOf = (cert: Buffer, key: Buffer): string =>
  createHash('sha256').update(cert).update('\0').update(key).digest('hex');
