/**
 * The lab's test-only switches (docs/reliability.md): the chaos suite switches one safety
 * mechanism off at a time to show that its invariants catch what the mechanism prevents. Only a
 * worker on a lab configuration honours them (worker/main.ts); nothing else sets them.
 */
export const UNSAFE_SWITCHES = {
  /** Mutating steps act whatever the fencing epoch (activities/guard.ts). */
  'no-epoch-guard': 'the fencing epoch guard',
  /** A failover never fences the old primary's networks at the storage (activities/fencing.ts). */
  'no-storage-fence': 'the storage fence',
  /** The final sync of a planned move returns at once, unproven (activities/replication.ts). */
  'no-final-sync-proof': 'the final-sync proof',
} as const;

export type UnsafeSwitch = keyof typeof UNSAFE_SWITCHES;

const off = new Set<UnsafeSwitch>();

export function isUnsafeSwitch(name: string): name is UnsafeSwitch {
  return Object.hasOwn(UNSAFE_SWITCHES, name);
}

export function switchOff(name: UnsafeSwitch): void {
  off.add(name);
}

/** Whether the chaos suite switched this mechanism off (never outside the lab). */
export function switchedOff(name: UnsafeSwitch): boolean {
  return off.has(name);
}
