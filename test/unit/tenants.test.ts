/** Who owns each application: the runbook's own word, else its namespaces, else the default tenant. */
import { DEFAULT_TENANT, tenancyOf } from '../../planner/tenants.ts';
import type { Runbook } from '../../runbook/types.ts';

function runbook(name: string, namespaces: string[], tenant?: string): Runbook {
  return {
    metadata: { name, ...(tenant ? { tenant } : {}) },
    spec: { namespaces },
  } as unknown as Runbook;
}

const TENANTS = [
  { name: 'payments', namespaces: ['pay', 'pay-batch'] },
  { name: 'ledger', namespaces: ['ledger'] },
];

describe('tenancyOf', () => {
  it('takes the runbook’s tenant, else its namespaces’ owner, else the default', () => {
    const { owners, problems } = tenancyOf(
      [
        runbook('cards', ['pay']),
        runbook('gl', ['ledger']),
        runbook('misc', ['tools']),
        runbook('fx', ['fx'], 'payments'),
      ],
      TENANTS,
    );
    expect(Object.fromEntries(owners)).toEqual({
      cards: 'payments',
      gl: 'ledger',
      misc: DEFAULT_TENANT,
      fx: 'payments',
    });
    expect(problems).toEqual([]);
  });

  it('names every contradiction, with the runbook', () => {
    const { problems } = tenancyOf(
      [
        runbook('both', ['pay', 'ledger']),
        runbook('liar', ['ledger'], 'payments'),
        runbook('ghost', ['tools'], 'treasury'),
      ],
      [...TENANTS, { name: 'risk', namespaces: ['ledger'] }],
    );
    expect(problems).toEqual([
      'namespace ledger is given to 2 tenants: ledger, risk',
      'runbook both spans namespaces of payments and ledger and risk: one tenant must own it',
      'runbook liar spans namespaces of ledger and risk: one tenant must own it',
      'runbook liar names tenant payments, but its namespaces belong to ledger, risk',
      'runbook ghost names tenant treasury, which the configuration does not define',
    ]);
  });
});
