'use strict';
/*
 * Once per queue-mode run: n8n into the cache (first time only), Redis and Postgres from Debian's packages
 * (apt-get, first time only), then the package built and packed with `npm pack`. The test files find the
 * results through KLING_QUEUE_STATE. KLING_QUEUE_TARBALL=<file> uses an existing tarball instead of packing.
 *
 * Also: Ctrl-C (or SIGTERM) on jest kills what the test files started (listed in <workDir>/processes.json):
 * jest gives test files a process object of their own, so their handlers never see the signal.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const host = require('../../scripts/lib/n8n-host');
const { packPackage } = require('../../scripts/lib/n8n-instance');
const { ensureQueueServices } = require('../../scripts/lib/queue-mode');
const { cleanUp } = require('./cleanup');

module.exports = async function globalSetup() {
	const started = Date.now();
	process.stderr.write('\n');
	const n8n = await host.ensureN8n(host.n8nVersion());
	const services = await ensureQueueServices();
	host.log(`redis-server ${services.redisVersion}, PostgreSQL ${services.postgresVersion} (${services.pgBinDir})`);
	const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kling-queue-'));
	const registryFile = path.join(workDir, 'processes.json');
	for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
		process.once(signal, () => {
			process.stderr.write(`\n[queue] ${signal}: killing Redis, Postgres and n8n started by the tests\n`);
			cleanUp(registryFile, { removeDirs: false });
			Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1500); // let Postgres go
			cleanUp(registryFile);
			if (process.env.KLING_QUEUE_KEEP !== '1') fs.rmSync(workDir, { recursive: true, force: true });
			process.exit(130);
		});
	}
	const tarball = process.env.KLING_QUEUE_TARBALL
		? path.resolve(process.env.KLING_QUEUE_TARBALL)
		: await packPackage(path.join(workDir, 'pack'));
	const state = { workDir, tarball, version: n8n.version, services };
	const stateFile = path.join(workDir, 'state.json');
	fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
	process.env.KLING_QUEUE_STATE = stateFile;
	host.log(`queue-mode setup done in ${host.formatSeconds(Date.now() - started)}`);
};
