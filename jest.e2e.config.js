/**
 * End-to-end tests: the packed package inside real n8n (`npm run test:e2e`).
 * n8n is installed once into a cache folder outside the repository by test/e2e/global-setup.js.
 */
module.exports = {
	preset: 'ts-jest',
	testEnvironment: 'node',
	rootDir: __dirname,
	testMatch: ['<rootDir>/test/e2e/**/*.e2e.test.ts'],
	globalSetup: '<rootDir>/test/e2e/global-setup.js',
	globalTeardown: '<rootDir>/test/e2e/global-teardown.js',
	// One n8n run keeps both cores busy: the test files run one after another.
	maxWorkers: 1,
	testTimeout: 5 * 60 * 1000,
	// A server left open by a failed setup must not keep CI waiting.
	forceExit: true,
	verbose: true,
};
