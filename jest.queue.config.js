/**
 * n8n's queue mode (`npm run test:queue`): Redis, Postgres, one n8n main and two workers with the packed
 * package, on loopback. n8n is installed once into the cache folder (shared with the e2e tests) by
 * test/queue/global-setup.js, which also installs redis-server and postgresql with apt when missing.
 */
module.exports = {
	preset: 'ts-jest',
	testEnvironment: 'node',
	rootDir: __dirname,
	testMatch: ['<rootDir>/test/queue/**/*.queue.test.ts'],
	globalSetup: '<rootDir>/test/queue/global-setup.js',
	globalTeardown: '<rootDir>/test/queue/global-teardown.js',
	// Four n8n processes fill a small machine: one test file at a time.
	maxWorkers: 1,
	testTimeout: 3 * 60 * 1000,
	// A process left open by a failed setup must not keep CI waiting.
	forceExit: true,
	verbose: true,
};
