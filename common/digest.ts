/** Digests of secrets: the configuration keeps these, never the secrets. */
import { createHash, timingSafeEqual } from 'node:crypto';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Whether `secret` hashes to the configured hex SHA-256 `digest`, compared in constant time. */
export function matchesDigest(secret: string, digest: string): boolean {
  const want = Buffer.from(digest, 'hex');
  const got = createHash('sha256').update(secret, 'utf8').digest();
  return want.length === got.length && timingSafeEqual(want, got);
}
