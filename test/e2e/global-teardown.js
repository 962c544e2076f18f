'use strict';
const fs = require('node:fs');
const path = require('node:path');

module.exports = async function globalTeardown() {
	const stateFile = process.env.KLING_E2E_STATE;
	if (!stateFile || process.env.KLING_E2E_KEEP === '1') return;
	fs.rmSync(path.dirname(stateFile), { recursive: true, force: true });
};
