/**
 * Site-wide ordering: applications move in waves. An application's wave comes after every wave of
 * the applications it depends on, and no earlier than its tier allows (lower tiers first).
 * Dependencies on applications outside the set are ignored here (the validator reports unknown
 * names; cycles are refused by the validator too, and broken here by position as a last resort).
 */
import type { Runbook } from '../runbook/types.ts';

export function planWaves(runbooks: Runbook[]): string[][] {
  const byName = new Map(runbooks.map((r) => [r.metadata.name, r]));
  const tiers = [...new Set(runbooks.map((r) => r.spec.priority.tier))].sort((a, b) => a - b);
  const wave = new Map<string, number>();
  const visiting = new Set<string>();
  const waveOf = (name: string): number => {
    const known = wave.get(name);
    if (known !== undefined) return known;
    const r = byName.get(name)!;
    visiting.add(name);
    let w = tiers.indexOf(r.spec.priority.tier);
    for (const dep of r.spec.priority.dependsOn) {
      if (!byName.has(dep) || visiting.has(dep)) continue;
      w = Math.max(w, waveOf(dep) + 1);
    }
    visiting.delete(name);
    wave.set(name, w);
    return w;
  };
  for (const r of runbooks) waveOf(r.metadata.name);
  const used = [...new Set(wave.values())].sort((a, b) => a - b);
  return used.map((w) =>
    [...wave.entries()]
      .filter(([, x]) => x === w)
      .map(([n]) => n)
      .sort(),
  );
}
