'use strict';
/*
 * Once per browser-test run: Debian's Chromium (installed with apt-get when missing), n8n in the cache (as for
 * the e2e tests), then `npm start` itself (scripts/start.js: the package built, packed and installed into n8n
 * from its tarball, the simulator as the API, the credential and the example workflows imported, the owner
 * from the environment) on a free port with a throwaway data folder. The tests find it through
 * KLING_BROWSER_STATE; global-teardown.js stops it with Ctrl-C, as a user would.
 */
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const host = require('../../scripts/lib/n8n-host');
const { freePort } = require('../../scripts/lib/n8n-instance');
const { ensureChromium } = require('./chromium');

const START_TIMEOUT_MS = 5 * 60 * 1000;

module.exports = async function globalSetup() {
	const started = Date.now();
	process.stderr.write('\n');
	const chromium = ensureChromium();
	await host.ensureN8n();

	// Screenshots of this run only.
	fs.rmSync(path.join(host.REPO_ROOT, '.ci-results', 'screenshots'), { recursive: true, force: true });
	const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kling-browser-'));
	const port = await freePort();
	const owner = { email: 'browser-owner@example.com', password: `Browser-${crypto.randomBytes(6).toString('hex')}-1` };
	const { COMETAPI_API_KEY, OPENAI_API_KEY, NODE_ENV, ...env } = process.env;
	void COMETAPI_API_KEY;
	void OPENAI_API_KEY;
	void NODE_ENV;
	const child = spawn(process.execPath, [path.join(host.REPO_ROOT, 'scripts', 'start.js')], {
		cwd: host.REPO_ROOT,
		env: {
			...env,
			KLING_DEMO_DIR: path.join(workDir, 'demo'),
			N8N_PORT: String(port),
			N8N_OWNER_EMAIL: owner.email,
			N8N_OWNER_PASSWORD: owner.password,
		},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
	let stdout = '';
	let stderr = '';
	child.stdout.on('data', (d) => (stdout += d));
	child.stderr.on('data', (d) => (stderr += d));
	globalThis.__KLING_BROWSER_START__ = { child, exited };

	const deadline = Date.now() + START_TIMEOUT_MS;
	while (!stdout.includes('is running at')) {
		if (child.exitCode !== null || child.signalCode !== null) {
			throw new Error(`npm start exited (${child.exitCode ?? child.signalCode}) before n8n was up:\n${stderr.slice(-4000)}`);
		}
		if (Date.now() > deadline) {
			child.kill('SIGINT');
			throw new Error(`npm start did not bring n8n up within ${START_TIMEOUT_MS / 1000} s:\n${stderr.slice(-4000)}`);
		}
		await new Promise((r) => setTimeout(r, 250));
	}
	const simulator = /the local simulator at (http:\/\/\S+)/.exec(stdout);
	const state = {
		workDir,
		chromium,
		baseUrl: `http://localhost:${port}`,
		owner,
		simulatorUrl: simulator ? simulator[1] : undefined,
		startOutput: stdout,
	};
	const stateFile = path.join(workDir, 'state.json');
	fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
	process.env.KLING_BROWSER_STATE = stateFile;
	host.log(`browser-test setup done in ${host.formatSeconds(Date.now() - started)}: n8n at ${state.baseUrl}, Chromium ${chromium}`);
};
