/**
 * How every Pivot process connects to Temporal (the API's client, the workers' native connection):
 * one builder, so that what the configuration says about transport security (mTLS, a private CA,
 * a server name, a Temporal Cloud API key) holds for all of them. Secrets come from files, never
 * from the configuration itself.
 */
import { readFileSync } from 'node:fs';
import type { PivotConfig } from '../config/types.ts';

/** The options Connection.connect (client) and NativeConnection.connect (worker) both take. */
export interface TemporalConnectionOptions {
  address: string;
  tls?:
    | boolean
    | {
        serverNameOverride?: string;
        serverRootCACertificate?: Buffer;
        clientCertPair?: { crt: Buffer; key: Buffer };
      };
  apiKey?: string;
}

export function temporalConnectionOptions(temporal: PivotConfig['temporal']): TemporalConnectionOptions {
  const { tls } = temporal;
  const apiKey = temporal.apiKeyFile ? readFileSync(temporal.apiKeyFile, 'utf8').trim() : undefined;
  if (temporal.apiKeyFile && !apiKey) throw new Error(`temporal.apiKeyFile ${temporal.apiKeyFile} is empty`);
  const tlsOptions = tls
    ? {
        ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
        ...(tls.caFile ? { serverRootCACertificate: readFileSync(tls.caFile) } : {}),
        ...(tls.certFile && tls.keyFile
          ? { clientCertPair: { crt: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } }
          : {}),
      }
    : undefined;
  return {
    address: temporal.address,
    // An API key travels only over TLS (Temporal Cloud), with the system's CAs unless one is given.
    ...(tlsOptions ? { tls: tlsOptions } : apiKey ? { tls: true } : {}),
    ...(apiKey ? { apiKey } : {}),
  };
}
