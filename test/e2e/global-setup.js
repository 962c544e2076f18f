'use strict';
/*
 * Once per e2e run: installs n8n into the cache (first time only, a few minutes, with progress), builds the
 * package and packs it with `npm pack`. The test files find the results through KLING_E2E_STATE.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const host = require('../../scripts/lib/n8n-host');
const { packPackage } = require('../../scripts/lib/n8n-instance');
const { legacyEnabled } = require('./legacy');

module.exports = async function globalSetup() {
	const started = Date.now();
	process.stderr.write('\n');
	const versions = [host.n8nVersion(), ...(legacyEnabled() ? [host.LEGACY_N8N_VERSION] : [])];
	for (const version of versions) {
		const t = Date.now();
		await host.ensureN8n(version);
		host.log(`n8n ${version} ready (${host.formatSeconds(Date.now() - t)})`);
	}
	const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kling-e2e-'));
	const tarball = await packPackage(path.join(workDir, 'pack'));
	const state = { workDir, tarball, versions };
	const stateFile = path.join(workDir, 'state.json');
	fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
	process.env.KLING_E2E_STATE = stateFile;
	host.log(`e2e setup done in ${host.formatSeconds(Date.now() - started)}`);
};
