'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** Removes the work folder (user folder, logs) unless KLING_QUEUE_KEEP=1. */
module.exports = async function globalTeardown() {
	const stateFile = process.env.KLING_QUEUE_STATE;
	if (!stateFile || process.env.KLING_QUEUE_KEEP === '1') return;
	fs.rmSync(path.dirname(stateFile), { recursive: true, force: true });
};
