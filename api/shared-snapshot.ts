/**
 * A read that many callers share. Callers get the last answer while it is younger than
 * `refreshAfterMs`; older, they still get it at once while one new read runs in the background, as
 * long as it is younger than `maxAgeMs`; older still (or none yet), they wait for the read in
 * flight, which every concurrent caller shares. What the status of the estate costs then depends on
 * how fresh it must be, not on how many people look (GET /v1/apps, read every few seconds by every
 * board and `pivot status` during an incident), and no caller waits for a read of both sites once
 * the first is done. A failed read is not kept: the next caller tries again.
 */
export interface SnapshotAges {
  refreshAfterMs: number;
  maxAgeMs: number;
}

export function sharedSnapshot<T>(
  read: () => Promise<T>,
  ages: SnapshotAges,
  now: () => number = Date.now,
): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  let last: { value: T; at: number } | undefined;
  const refresh = (): Promise<T> => {
    if (!inFlight) {
      const started = now();
      inFlight = read()
        .then((value) => {
          last = { value, at: started };
          return value;
        })
        .finally(() => {
          inFlight = undefined;
        });
    }
    return inFlight;
  };
  return () => {
    const age = last ? now() - last.at : Infinity;
    if (last && age < ages.refreshAfterMs) return Promise.resolve(last.value);
    if (last && age < ages.maxAgeMs) {
      refresh().catch(() => undefined); // the next caller past maxAgeMs sees the error
      return Promise.resolve(last.value);
    }
    return refresh();
  };
}
