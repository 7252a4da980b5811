/**
 * The API's contract declares every status a route can answer: a client generated from it must
 * not meet an undocumented one. What the shared layers answer is the same for every route of a
 * kind: authentication (401, 403, 429), the audit log that must record a change first (503), and
 * the JSON body parser (400, 413, 415).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../lab/layout.ts';
import { join } from 'node:path';

interface Operation {
  requestBody?: unknown;
  security?: unknown[];
  responses: Record<string, unknown>;
}

const doc = parse(readFileSync(join(REPO_ROOT, 'api', 'openapi.yaml'), 'utf8')) as {
  paths: Record<string, Record<string, Operation>>;
};

const changes = Object.entries(doc.paths).flatMap(([path, item]) =>
  ['post', 'put', 'patch', 'delete']
    .filter((m) => item[m])
    .map((m) => ({ route: `${m.toUpperCase()} ${path}`, op: item[m]! })),
);

describe('api/openapi.yaml', () => {
  it('has routes that change something', () => {
    expect(changes.length).toBeGreaterThan(5);
  });

  it.each(changes.filter((c) => c.route.includes('/v1/')))(
    '$route declares what authentication, the audit log and the body parser answer',
    ({ op }) => {
      const declared = Object.keys(op.responses);
      const needed = ['401', '403', '429', '503', ...(op.requestBody ? ['400', '413', '415'] : [])];
      expect(needed.filter((s) => !declared.includes(s))).toEqual([]);
    },
  );
});
