/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // Transpile only: type checking is `npm run lint` (tsc over lib/ and test/).
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json', diagnostics: false }],
  },
  testTimeout: 120000,
  // One worker per core is the fastest on 2 cores; native tests are CPU-bound.
  maxWorkers: 2,
  // The default output, then the list of skipped tests with their reasons.
  reporters: ['default', '<rootDir>/test/skip-reporter.js'],
};
