'use strict';
/*
 * Last-resort clean-up for the queue-mode tests, run in jest's own process (global setup's signal handlers,
 * global teardown): kills whatever a test file's cluster left running, from the list it keeps
 * (scripts/lib/queue-mode.js, killRegistered), and removes the Postgres folders.
 */
const fs = require('node:fs');
const path = require('node:path');
const { killRegistered, readRegistry } = require('../../scripts/lib/queue-mode');

function cleanUp(registryFile, { removeDirs = true } = {}) {
	const killed = killRegistered(registryFile);
	if (killed > 0) process.stderr.write(`[queue] killed ${killed} process(es) the tests left running\n`);
	if (!removeDirs) return killed;
	for (const { postgresDataDir } of readRegistry(registryFile).filter((e) => e.postgresDataDir)) {
		// The folder made for the cluster (data, socket, log); gone already after a clean stop.
		const dir = path.dirname(postgresDataDir);
		for (let attempt = 0; attempt < 3 && fs.existsSync(dir); attempt++) {
			try {
				fs.rmSync(dir, { recursive: true, force: true });
			} catch {}
		}
	}
	return killed;
}

module.exports = { cleanUp };
