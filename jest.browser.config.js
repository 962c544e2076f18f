/**
 * Browser tests: n8n's editor in headless Chromium (Debian's `chromium`, driven by puppeteer-core) against the
 * real n8n that `npm start` brings up (`npm run test:browser`). See test/browser/global-setup.js.
 */
module.exports = {
	preset: 'ts-jest',
	testEnvironment: 'node',
	rootDir: __dirname,
	testMatch: ['<rootDir>/test/browser/**/*.browser.test.ts'],
	globalSetup: '<rootDir>/test/browser/global-setup.js',
	globalTeardown: '<rootDir>/test/browser/global-teardown.js',
	// One n8n and one Chromium at a time: both cores are busy enough.
	maxWorkers: 1,
	testTimeout: 3 * 60 * 1000,
	forceExit: true,
	verbose: true,
};
