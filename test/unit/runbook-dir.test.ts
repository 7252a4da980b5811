/**
 * The runbook directory is read again only when a file in it changes: the status refreshes it
 * every few seconds, and parsing hundreds of runbooks each time held the API's event loop.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../../lab/layout.ts';
import { loadRunbookDir, RunbookSetError } from '../../planner/inputs.ts';

const SITES = ['dc-a', 'dc-b'];
const dir = mkdtempSync(join(tmpdir(), 'pivot-runbooks-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadRunbookDir', () => {
  it('keeps an unchanged directory, and reads it again when a file changes, comes or goes', () => {
    const source = join(REPO_ROOT, 'runbooks', 'orders.yaml');
    copyFileSync(source, join(dir, 'orders.yaml'));
    const first = loadRunbookDir(dir, SITES);
    expect(first.map((r) => r.metadata.name)).toEqual(['orders']);
    expect(loadRunbookDir(dir, SITES)).toBe(first);
    // Another site list is another check.
    expect(loadRunbookDir(dir, [...SITES, 'dc-c'])).not.toBe(first);

    const text = readFileSync(source, 'utf8');
    writeFileSync(join(dir, 'orders.yaml'), text.replace('rpo: 30s', 'rpo: 7s'));
    const edited = loadRunbookDir(dir, SITES);
    expect(edited).not.toBe(first);
    expect(edited[0]!.spec.objectives.rpo).toBe('7s');

    writeFileSync(join(dir, 'broken.yaml'), 'apiVersion: pivot.dev/v1alpha1\nkind: Runbook\n');
    expect(() => loadRunbookDir(dir, SITES)).toThrow(RunbookSetError);
    unlinkSync(join(dir, 'broken.yaml'));
    expect(loadRunbookDir(dir, SITES)[0]!.spec.objectives.rpo).toBe('7s');
  });
});
