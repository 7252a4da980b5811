/** Polling helpers for "until this is true" waits outside workflows (lab, tests, CLI). */

export class WaitTimeoutError extends Error {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    readonly lastState: string | undefined,
  ) {
    super(
      `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${lastState ? ` (last seen: ${lastState})` : ''}`,
    );
    this.name = 'WaitTimeoutError';
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `check` until it returns true. `check` may return a string to describe the state it saw
 * (kept for the timeout message); thrown errors count as "not yet" and are described too.
 */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean | string> | boolean | string,
  { timeoutMs = 60_000, intervalMs = 500 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string | undefined;
  for (;;) {
    try {
      const result = await check();
      if (result === true) return;
      if (typeof result === 'string') last = result;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) throw new WaitTimeoutError(what, timeoutMs, last);
    await sleep(intervalMs);
  }
}
