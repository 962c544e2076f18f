'use strict';
// Run: node docs/experiments/parking/restart.js   (about 1.5 min; one n8n 2.41.1 on a free loopback port)
/*
 * Question 3, single process: park C (limit 30 s) and D (limit 600 s), stop n8n, keep it down until C's limit
 * has passed, start it again on the same port. Then: does D's resume URL still reach the node's webhook
 * (a webhookResponse call, then a resuming call)? What runs for C once its limit has passed — the node's
 * execute() again, or something else, and what does the node output?
 */
const lib = require('./lib');

const userFolder = process.env.PARK_DIR || '/tmp/park-experiment/restart';

async function main() {
	const ctx = await lib.prepare(userFolder);
	const port = await lib.freePort();
	const base = `http://127.0.0.1:${port}`;
	const show = (label, value) => console.log(`\n## ${label} (${new Date().toISOString()})\n${JSON.stringify(value, null, 1)}`);
	const exec = (id) => lib.summarize(lib.readExecution(ctx.dbFile, ctx.n8n.dir, id));
	const local = (url) => url.replace(/^http:\/\/localhost:\d+/, base);
	let server = await ctx.instance.start({ port, echo: false });
	try {
		const c = await lib.startParkedExecution(base, ctx, { prompts: ['c1', 'c2'], waitSeconds: 30 });
		const d = await lib.startParkedExecution(base, ctx, { prompts: ['d1'], waitSeconds: 600 });
		show('C and D parked', { c: { id: c.executionId, waitTill: c.waitTill }, d: { id: d.executionId, waitTill: d.waitTill } });
		show('C call 1 before the restart (webhookResponse)', await lib.post(local(c.resumeUrl), { call: 'c1', action: 'webhookResponse' }));
		await server.stop();
		show('n8n stopped; C and D in the database', { c: exec(c.executionId), d: exec(d.executionId) });
		const downUntil = Date.parse(c.waitTill) + 3000;
		await new Promise((r) => setTimeout(r, Math.max(0, downUntil - Date.now())));
		const executesBefore = lib.probeLog(ctx.logFile).filter((e) => e.kind === 'execute').length;
		server = await ctx.instance.start({ port, echo: false });
		show('n8n started again, C limit passed while down', { executesBefore });
		await lib.waitFor('C to leave waiting', () => !['waiting', 'running'].includes(exec(c.executionId).status), { timeoutMs: 90000 });
		show('C after its limit', exec(c.executionId));
		show('D call 1 after the restart (webhookResponse)', await lib.post(local(d.resumeUrl), { call: 'd1', action: 'webhookResponse' }));
		show('D after call 1', exec(d.executionId));
		show('D call 2 after the restart (resume)', await lib.post(local(d.resumeUrl), { call: 'd2', action: 'resume' }));
		await lib.waitFor('D to finish', () => !['waiting', 'running'].includes(exec(d.executionId).status));
		show('D after call 2', exec(d.executionId));
		show('everything the probe recorded', lib.probeLog(ctx.logFile));
		const out = server.output();
		show('n8n log lines about waiting/resuming', out.split('\n').filter((l) => /wait|resum/i.test(l)).slice(-20));
	} finally {
		await server.stop();
	}
}

main().catch((error) => {
	console.error(error);
	process.exitCode = 1;
});
