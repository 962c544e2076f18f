'use strict';
/** Whether the e2e run also checks n8n 1.x (the last 1.x line, on Node 20). Off with KLING_E2E_N8N1=0. */
function legacyEnabled() {
	return process.env.KLING_E2E_N8N1 !== '0';
}
module.exports = { legacyEnabled };
