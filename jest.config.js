// Two projects: `unit` needs nothing running; `lab` runs against the two-datacenter lab, which
// test/lab-setup.ts starts once for the whole run (and stops again only if it started it).
/** @type {import('ts-jest').TsJestTransformerOptions} */
const tsJest = { useESM: true, tsconfig: { isolatedModules: true } };

const common = {
  // Only test/ holds tests and snapshots (the lab's etcd data under .lab/ has *.snap files too).
  roots: ['<rootDir>/test'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', tsJest] },
  testEnvironment: 'node',
};

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'lab',
      // The chaos suite runs on the same lab (its `ci` profile; `npm run test:chaos` runs `full`).
      testMatch: ['<rootDir>/test/lab/**/*.test.ts', '<rootDir>/test/chaos/**/*.test.ts'],
      globalSetup: '<rootDir>/test/lab-setup.js',
      globalTeardown: '<rootDir>/test/lab-teardown.js',
    },
  ],
  // The lab is one shared set of processes: its suites must not interleave.
  maxWorkers: 1,
  // Lab steps wait on real control planes (a site restart takes seconds); unit tests never get near.
  testTimeout: 180_000,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
