/**
 * The API's defences that need no lab: the rate limiter forgets callers whose window ended, and
 * X-Forwarded-For names the client only when it comes from a proxy the configuration trusts.
 */
import express from 'express';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { clientAddress, RateLimiter } from '../../api/auth.ts';
import { matchesDigest } from '../../common/digest.ts';

describe('RateLimiter', () => {
  it('limits each caller per minute, and forgets the windows that ended', () => {
    let now = 0;
    const limiter = new RateLimiter(2, () => now);
    for (let i = 0; i < 1000; i++) expect(limiter.take(`address:10.0.${i >> 8}.${i & 255}`)).toBe(0);
    expect(limiter.take('address:10.0.0.0')).toBe(0);
    expect(limiter.take('address:10.0.0.0')).toBe(60);
    expect(limiter.tracked).toBe(1000);
    now = 61_000;
    expect(limiter.take('address:192.0.2.1')).toBe(0);
    expect(limiter.tracked).toBe(1);
  });
});

describe('clientAddress', () => {
  async function seenAs(trusted: string[] | false, forwardedFor: string): Promise<string> {
    const app = express();
    app.set('trust proxy', trusted);
    app.get('/', (req, res) => {
      res.send(clientAddress(req));
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'x-forwarded-for': forwardedFor } });
      return await res.text();
    } finally {
      server.close();
    }
  }

  it('is the socket address unless the proxy is trusted', async () => {
    expect(await seenAs(false, '203.0.113.9')).toBe('127.0.0.1');
    expect(await seenAs(['10.0.0.0/8'], '203.0.113.9')).toBe('127.0.0.1');
    expect(await seenAs(['127.0.0.1/32'], '203.0.113.9')).toBe('203.0.113.9');
  });
});

describe('matchesDigest', () => {
  it("takes only the secret whose digest is configured (the scraper's token)", () => {
    const digest = createHash('sha256').update('scraper-secret').digest('hex');
    expect(matchesDigest('scraper-secret', digest)).toBe(true);
    expect(matchesDigest('scraper-secreT', digest)).toBe(false);
    expect(matchesDigest('', digest)).toBe(false);
  });
});
