'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { cleanUp } = require('./cleanup');

/**
 * Kills anything the test files left running (normally nothing: they stop their cluster in afterAll), then
 * removes the work folder (user folder, logs) unless KLING_QUEUE_KEEP=1.
 */
module.exports = async function globalTeardown() {
	const stateFile = process.env.KLING_QUEUE_STATE;
	if (!stateFile) return;
	const workDir = path.dirname(stateFile);
	if (cleanUp(path.join(workDir, 'processes.json'), { removeDirs: false }) > 0) await new Promise((r) => setTimeout(r, 1500));
	cleanUp(path.join(workDir, 'processes.json'));
	if (process.env.KLING_QUEUE_KEEP === '1') return;
	fs.rmSync(workDir, { recursive: true, force: true });
};
