/**
 * The faults the lab's API proxy can put between Pivot and a site's kube-apiserver, and the choice
 * it makes for each request. Pure: the proxy (proxy.ts) applies the choice.
 */
import { Ajv } from 'ajv';

export interface ApiFaults {
  /** Share of matching requests answered with `status` instead of being forwarded (0 to 1). */
  errorRate: number;
  /** The answer of an injected error: a 5xx, or 429 (with Retry-After: 1). */
  status: 500 | 502 | 503 | 504 | 429;
  /** Share of matching requests whose connection is cut before any answer (0 to 1). */
  dropRate: number;
  /** Added before each matching request is forwarded (or faulted). */
  latencyMs: number;
  /** Matching requests get no answer at all until the blackhole is lifted (or the client gives up). */
  blackhole: boolean;
  /** Only requests whose "METHOD /path?query" matches this regular expression; every request if absent. */
  match?: string;
  /** Only the next N matching requests are faulted, then these faults clear by themselves. */
  count?: number;
}

export const NO_FAULTS: ApiFaults = {
  errorRate: 0,
  status: 503,
  dropRate: 0,
  latencyMs: 0,
  blackhole: false,
};

export const FAULTS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    errorRate: { type: 'number', minimum: 0, maximum: 1 },
    status: { enum: [500, 502, 503, 504, 429] },
    dropRate: { type: 'number', minimum: 0, maximum: 1 },
    latencyMs: { type: 'integer', minimum: 0, maximum: 120_000 },
    blackhole: { type: 'boolean' },
    match: { type: 'string', minLength: 1, maxLength: 200 },
    count: { type: 'integer', minimum: 1, maximum: 1_000_000 },
  },
} as const;

const validate = new Ajv({ allErrors: true }).compile<Partial<ApiFaults>>(FAULTS_SCHEMA);

/** Checks a fault change; returns the messages of what is wrong (empty when valid). */
export function faultErrors(body: unknown): string[] {
  if (validate(body)) {
    const match = body.match;
    if (match !== undefined) {
      try {
        new RegExp(match);
      } catch (err) {
        return [`match: not a regular expression (${(err as Error).message})`];
      }
    }
    return [];
  }
  return (validate.errors ?? []).map(
    (e) => `${e.instancePath.slice(1) || 'body'} ${e.message ?? 'is invalid'}`,
  );
}

export type Verdict =
  | { kind: 'forward'; delayMs: number }
  | { kind: 'error'; delayMs: number; status: number }
  | { kind: 'drop'; delayMs: number }
  | { kind: 'blackhole' };

/** What the proxy does with one request, given the faults in force and a random draw in [0, 1). */
export function decide(faults: ApiFaults, request: string, draw: number): Verdict {
  const matches = faults.match === undefined || new RegExp(faults.match).test(request);
  if (!matches) return { kind: 'forward', delayMs: 0 };
  const delayMs = faults.latencyMs;
  if (faults.blackhole) return { kind: 'blackhole' };
  if (draw < faults.dropRate) return { kind: 'drop', delayMs };
  if (draw < faults.dropRate + faults.errorRate) return { kind: 'error', delayMs, status: faults.status };
  return { kind: 'forward', delayMs };
}

/** Whether a verdict injected a fault (latency alone counts: it is what a test asked for). */
export function isFault(v: Verdict): boolean {
  return v.kind !== 'forward' || v.delayMs > 0;
}
