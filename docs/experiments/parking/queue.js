'use strict';
// Run: node docs/experiments/parking/queue.js   (about 3 min; Redis, a main, a worker and a webhook process on free loopback ports)
/*
 * Question 3, queue mode (one shared SQLite file, Redis; n8n 2.41.1 accepts SQLite in queue mode with a
 * warning): which process runs execute() and parks, which runs webhook() on a resume call (main or webhook
 * process), which runs the resumed execution; a worker killed (SIGKILL) while the execution is parked; two
 * resuming calls at the same moment on two processes; and what runs when a limit passes.
 */
const fs = require('node:fs');
const path = require('node:path');
const lib = require('./lib');
const queueMode = require('../../../scripts/lib/queue-mode');

const userFolder = process.env.PARK_DIR || '/tmp/park-experiment/queue';

async function main() {
	const show = (label, value) => console.log(`\n## ${label} (${new Date().toISOString()})\n${JSON.stringify(value, null, 1)}`);
	const redisDir = `${userFolder}-redis`;
	fs.rmSync(redisDir, { recursive: true, force: true });
	fs.mkdirSync(redisDir, { recursive: true });
	const { redisServer } = await queueMode.ensureQueueServices().catch(() => ({ redisServer: '/usr/bin/redis-server' }));
	const redis = await queueMode.startRedis({ redisServer, dir: redisDir, port: await lib.freePort() });
	const stops = [() => redis.stop()];
	try {
		const ctx = await lib.prepare(userFolder, {
			makeInstance: (n8n, options) =>
				new queueMode.QueueN8nInstance(n8n, {
					...options,
					redis,
					postgres: { host: 'unused', port: 0, database: 'unused', user: 'unused', password: 'unused' },
					env: { ...options.env, DB_TYPE: 'sqlite', N8N_DEFAULT_BINARY_DATA_MODE: 'filesystem' },
				}),
		});
		const exec = (id) => lib.summarize(lib.readExecution(ctx.dbFile, ctx.n8n.dir, id));
		const port = await lib.freePort();
		const mainProcess = await ctx.instance.startMain({ port });
		stops.unshift(() => mainProcess.stop());
		const base = `http://127.0.0.1:${port}`;
		let worker = await ctx.instance.startWorker({ name: 'w1', concurrency: 2 });
		stops.unshift(() => worker.stop());
		const hook = await ctx.instance.startWebhookProcess({ name: 'wh1' });
		stops.unshift(() => hook.stop());
		show('processes', { main: mainProcess.pid, worker: worker.pid, webhookProcess: hook.pid });
		const at = (url, origin) => url.replace(/^http:\/\/localhost:\d+/, origin);

		const e = await lib.startParkedExecution(base, ctx, { prompts: ['e1', 'e2'], waitSeconds: 600 });
		show('E parked by', { pid: e.pid, role: e.role, executionId: e.executionId });
		show('E call 1 at the webhook process (webhookResponse)', await lib.post(at(e.resumeUrl, hook.url), { call: 'e1', action: 'webhookResponse' }));
		show('E call 2 at the main (webhookResponse)', await lib.post(at(e.resumeUrl, base), { call: 'e2', action: 'webhookResponse' }));
		show('E after calls 1-2', exec(e.executionId));
		await worker.kill('SIGKILL');
		show('worker w1 killed (SIGKILL); E', exec(e.executionId));
		worker = await ctx.instance.startWorker({ name: 'w2', concurrency: 2 });
		show('worker w2 started', { pid: worker.pid });
		const both = await Promise.all([
			lib.post(at(e.resumeUrl, base), { call: 'e3-main', action: 'resume', delayMs: 200 }),
			lib.post(at(e.resumeUrl, hook.url), { call: 'e3-webhook', action: 'resume', delayMs: 200 }),
		]);
		show('E calls 3 (resume) on main and webhook process at once', both);
		await lib.waitFor('E to finish', () => !['waiting', 'running', 'new'].includes(exec(e.executionId).status), { timeoutMs: 60000 });
		show('E after the resuming calls', exec(e.executionId));

		const f = await lib.startParkedExecution(base, ctx, { prompts: ['f1'], waitSeconds: 20 });
		show('F parked (limit 20 s) by', { pid: f.pid, role: f.role, executionId: f.executionId, waitTill: f.waitTill });
		await lib.waitFor('F to leave waiting', () => !['waiting', 'running', 'new'].includes(exec(f.executionId).status), { timeoutMs: 120000, everyMs: 1000 });
		show('F after its limit', { ...exec(f.executionId), seenAt: new Date().toISOString() });

		show('everything the probe recorded', lib.probeLog(ctx.logFile).map((r) => ({ kind: r.kind, pid: r.pid, role: r.role, at: r.at, executionId: r.executionId, call: r.body?.call, customData: r.customData })));
		const grepLog = (file) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => /execution|resum|wait|job/i.test(l)).slice(-30);
		show('main log', grepLog(mainProcess.logFile));
		show('worker w1 log', grepLog(path.join(ctx.instance.logDir, 'w1.log')));
		show('worker w2 log', grepLog(worker.logFile));
		show('webhook process log', grepLog(hook.logFile));
	} finally {
		for (const stop of stops) await stop().catch(() => {});
	}
}

main().catch((error) => {
	console.error(error);
	process.exitCode = 1;
});
