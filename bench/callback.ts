/**
 * The callback path: N prompts through Create Omni Image without waiting (Callback URL set), the
 * simulator calling back, and Kling Omni Image Trigger (its webhook method through n8n-core's
 * WebhookContext, test/harness/webhook.ts) receiving each task. One process, in-process simulator.
 *
 *   npx tsc -p tsconfig.bench.json && node .cache/bench-build/bench/callback.js [N] [T ms]
 *
 * Prints one Markdown row: the time from the first create to the last image delivered (target: at
 * most T + 2 s, as for the polling path), the creating execution's own time, API queries per task
 * (target: 1, the verification query), callbacks received and executions started.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { CometApiKlingApi } from '../credentials/CometApiKlingApi.credentials';
import { KlingOmniImage } from '../nodes/KlingOmniImage/KlingOmniImage.node';
import { KlingOmniImageTrigger } from '../nodes/KlingOmniImageTrigger/KlingOmniImageTrigger.node';
import type * as SimulatorModule from '../simulator';
import { cleanupHarness, runNode } from '../test/harness';
import { WebhookTrigger } from '../test/harness/webhook';

const API_KEY = 'sk-bench-callback';

// Compiled to .cache/bench-build/bench/; the simulator is plain JavaScript at the repository root.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { startSimulator } = require(join(__dirname, '..', '..', '..', 'simulator')) as typeof SimulatorModule;

async function serve(trigger: WebhookTrigger, delivered: (at: number) => void): Promise<{ url: string; close(): Promise<void> }> {
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on('data', (chunk: Buffer) => chunks.push(chunk));
		req.on('end', () => {
			void (async () => {
				const rawBody = Buffer.concat(chunks);
				const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
				let body: unknown = {};
				try {
					body = JSON.parse(rawBody.toString('utf8'));
				} catch {}
				const result = await trigger.call({ body, rawBody, headers, url: req.url });
				if (result.started) delivered(performance.now());
				res.writeHead(result.status ?? 500, { 'content-type': 'application/json' });
				res.end(JSON.stringify(result.body ?? {}));
			})();
		});
	});
	server.maxConnections = 10_000;
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 1024, resolve));
	const { port } = server.address() as AddressInfo;
	return {
		// The trigger's own path: each task's callback token is made for it.
		url: `http://127.0.0.1:${port}${new URL(trigger.productionUrl()).pathname}`,
		close: async () => await new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

async function main(): Promise<void> {
	const n = Number(process.argv[2] ?? 200);
	const taskDurationMs = Number(process.argv[3] ?? 2000);
	const sim = await startSimulator({ apiKey: API_KEY, taskDurationMs, callbackTimeoutMs: 30_000 });
	const trigger = new WebhookTrigger({
		nodeType: new KlingOmniImageTrigger(),
		credentialType: new CometApiKlingApi(),
		credentials: { apiKey: API_KEY, baseUrl: sim.apiUrl },
	});
	const deliveries: number[] = [];
	const server = await serve(trigger, (at) => deliveries.push(at));
	try {
		const started = performance.now();
		const created = await runNode({
			nodeType: new KlingOmniImage(),
			credentialType: new CometApiKlingApi(),
			credentials: { apiKey: API_KEY, baseUrl: sim.apiUrl },
			parameters: {
				operation: 'createOmniImage',
				prompt: '={{ $json.prompt }}',
				waitForCompletion: false,
				additionalFields: { callbackUrl: server.url },
			},
			inputItems: Array.from({ length: n }, (_, i) => ({ json: { prompt: `Batch prompt ${i}` } })),
		});
		const creatingMs = performance.now() - started;
		if (created.error) throw created.error;
		const deadline = Date.now() + taskDurationMs + 120_000;
		while (deliveries.length < n && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
		const lastMs = Math.max(...deliveries) - started;
		await sim.flushCallbacks();
		const queries = sim.apiRequests('query').length;
		const problem =
			deliveries.length !== n
				? `${deliveries.length} of ${n} tasks delivered`
				: trigger.calls.filter((c) => c.started).length !== n
					? 'a task was emitted twice'
					: undefined;
		const target = taskDurationMs + 2000;
		process.stdout.write(
			[
				'| N | T | first create → last image delivered | creating execution | API queries/task | callbacks received | executions | target |',
				'| --- | --- | --- | --- | --- | --- | --- | --- |',
				`| ${n} | ${taskDurationMs / 1000} s | ${(lastMs / 1000).toFixed(2)} s | ${(creatingMs / 1000).toFixed(2)} s | ${(queries / n).toFixed(2)} | ${trigger.calls.length} | ${deliveries.length} | ${lastMs <= target && queries === n && !problem ? 'met' : `NOT MET${problem ? `: ${problem}` : ''}`} (≤ ${target / 1000} s, 1 query/task) |`,
				'',
			].join('\n'),
		);
		if (problem || lastMs > target || queries !== n) process.exitCode = 1;
	} finally {
		await server.close();
		await sim.close();
		cleanupHarness();
	}
}

main().catch((error) => {
	process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
	process.exit(1);
});
