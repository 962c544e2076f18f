'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** Stops `npm start` with Ctrl-C (SIGINT), which stops n8n and the simulator; SIGKILL if it hangs. */
module.exports = async function globalTeardown() {
	const start = globalThis.__KLING_BROWSER_START__;
	if (start && start.child.exitCode === null && start.child.signalCode === null) {
		start.child.kill('SIGINT');
		const done = await Promise.race([start.exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 30000))]);
		if (!done) start.child.kill('SIGKILL');
	}
	const stateFile = process.env.KLING_BROWSER_STATE;
	if (stateFile && process.env.KLING_BROWSER_KEEP !== '1') {
		fs.rmSync(path.dirname(stateFile), { recursive: true, force: true });
	}
};
