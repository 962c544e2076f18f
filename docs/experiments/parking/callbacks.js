'use strict';
// Run: node docs/experiments/parking/callbacks.js   (about 1.5 min; one n8n 2.41.1 on a free loopback port)
/*
 * Question 1 and 2: many calls to one parked execution's resume URL. Parks execution A (2 items), then calls its
 * resume URL with a webhookResponse-only answer, a noWebhookResponse answer, a wrong token, 6 concurrent
 * webhookResponse calls, then one call that returns workflowData, then one more after it finished.
 * Execution B: a webhook method that throws. Prints what the probe saw and what n8n stored after each step.
 */
const path = require('node:path');
const lib = require('./lib');

const userFolder = process.env.PARK_DIR || '/tmp/park-experiment/callbacks';

async function main() {
	const ctx = await lib.prepare(userFolder);
	const port = await lib.freePort();
	const server = await ctx.instance.start({ port, echo: false });
	const base = `http://127.0.0.1:${port}`;
	const show = (label, value) => console.log(`\n## ${label}\n${JSON.stringify(value, null, 1)}`);
	const exec = (id) => lib.summarize(lib.readExecution(ctx.dbFile, ctx.n8n.dir, id));
	try {
		const parked = await lib.startParkedExecution(base, ctx);
		show('execute() of A', parked);
		show('A in the database after parking', exec(parked.executionId));
		show('workflow static data after parking', lib.workflowStaticData(ctx.dbFile));
		const resumeUrl = parked.resumeUrl.replace(/^http:\/\/localhost:\d+/, base);

		show('call 1 (webhookResponse only)', await lib.post(resumeUrl, { call: 1, action: 'webhookResponse' }));
		show('A after call 1', exec(parked.executionId));
		show('call 2 (noWebhookResponse)', await lib.post(resumeUrl, { call: 2, action: 'noWebhookResponse' }));
		show('A after call 2', exec(parked.executionId));
		const badToken = resumeUrl.replace(/signature=[^&]+/, 'signature=0000');
		show('call 3 (wrong token)', await lib.post(badToken, { call: 3, action: 'resume' }));
		show('calls 4-9 at once (webhookResponse, 300 ms inside the webhook)', await Promise.all([4, 5, 6, 7, 8, 9].map((call) => lib.post(resumeUrl, { call, action: 'webhookResponse', delayMs: 300 }))));
		show('A after calls 4-9', exec(parked.executionId));
		show('workflow static data after calls 1-9', lib.workflowStaticData(ctx.dbFile));
		show('call 10 (workflowData: resume)', await lib.post(resumeUrl, { call: 10, action: 'resume' }));
		await lib.waitFor('A to finish', () => exec(parked.executionId).status !== 'waiting' && exec(parked.executionId).status !== 'running');
		show('A after call 10', exec(parked.executionId));
		show('workflow static data after A finished', lib.workflowStaticData(ctx.dbFile));
		show('call 11 (after the end)', await lib.post(resumeUrl, { call: 11, action: 'resume' }));

		const b = await lib.startParkedExecution(base, ctx, { prompts: ['gamma'] });
		const bUrl = b.resumeUrl.replace(/^http:\/\/localhost:\d+/, base);
		show('B call 1 (webhook throws)', await lib.post(bUrl, { call: 'b1', action: 'throw' }));
		await lib.waitFor('B to leave waiting', () => exec(b.executionId).status !== 'waiting' && exec(b.executionId).status !== 'running', { timeoutMs: 20000 }).catch(() => null);
		show('B after the throw', exec(b.executionId));
		show('B call 2', await lib.post(bUrl, { call: 'b2', action: 'resume' }));

		show('everything the probe recorded', lib.probeLog(ctx.logFile).map(({ argv, ...e }) => e));
	} finally {
		await server.stop();
	}
}

main().catch((error) => {
	console.error(error);
	process.exitCode = 1;
});
