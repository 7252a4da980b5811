/**
 * Kubernetes clients reuse one keep-alive agent (common/k8s-retry.ts) instead of the new agent the
 * client library makes per request, which cost a TLS handshake per request.
 */
import http from 'node:http';
import https from 'node:https';
import { AgentPool } from '../../common/k8s-retry.ts';

describe('AgentPool', () => {
  it('hands out one keep-alive agent while the TLS material stays the same', () => {
    const pool = new AgentPool();
    const first = pool.reuse(new https.Agent({ cert: 'c1', key: 'k1', ca: 'ca' }));
    const second = pool.reuse(new https.Agent({ cert: 'c1', key: 'k1', ca: 'ca' }));
    expect(first).toBeInstanceOf(https.Agent);
    expect(second).toBe(first);
    expect((first as http.Agent & { keepAlive: boolean }).keepAlive).toBe(true);
  });

  it('makes a new one when the certificate changes (a rotated client certificate)', () => {
    const pool = new AgentPool();
    const before = pool.reuse(new https.Agent({ cert: Buffer.from('c1'), key: 'k1' }));
    expect(pool.reuse(new https.Agent({ cert: Buffer.from('c1'), key: 'k1' }))).toBe(before);
    expect(pool.reuse(new https.Agent({ cert: Buffer.from('c2'), key: 'k1' }))).not.toBe(before);
  });

  it('leaves proxy agents and missing agents to the library', () => {
    class ProxyAgent extends https.Agent {}
    const pool = new AgentPool();
    expect(pool.reuse(new ProxyAgent())).toBeUndefined();
    expect(pool.reuse(undefined)).toBeUndefined();
    expect(pool.reuse(new http.Agent())).toBeInstanceOf(http.Agent);
  });
});
