/**
 * One measurement in a fresh process (started by run.ts with child_process.fork), so that peak RSS
 * (the kernel's high-water mark, which never goes down) belongs to this measurement alone.
 *
 * - `node`: the node's batch path, through n8n-core's real execute context (test/harness), with
 *   binary data in the given mode.
 * - `baseline`: what an HTTP Request → Wait → IF loop does, as plain HTTP calls: for each item,
 *   create, poll every interval until done, download, then the next item.
 * - `floor`: the same requests the node sends (1 create, ceil(T / interval) queries, 1 download into
 *   binary data per item) made by a bare inline node through the same n8n helpers, without any of
 *   the node's logic: what n8n itself costs for that work, to tell it apart from the node's overhead.
 *
 * Protocol: <- {type:'start', job} ; -> {type:'warmedUp'} ; <- {type:'go'} ; -> {type:'result', result}
 */
import type { IDataObject, IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';

export interface WorkerJob {
	kind: 'node' | 'baseline' | 'floor';
	n: number;
	/** The simulator's task duration (the floor polls exactly ceil(T / interval) times). */
	taskDurationMs: number;
	apiUrl: string;
	apiKey: string;
	pollIntervalMs: number;
	/** Images per task (the create body's `n`). */
	imagesPerTask: number;
	resolution: '1k' | '2k' | '4k';
	binaryMode: 'filesystem' | 'default';
	/** Sample RSS every few ms as a cross-check of the kernel's peak. */
	sampleRss: boolean;
}

export interface WorkerResult {
	wallMs: number;
	cpuMs: number;
	rssBeforeBytes: number;
	/** The kernel's peak RSS for this process (getrusage maxrss), taken after the run. */
	peakRssBytes: number;
	/** Highest RSS seen by sampling during the run (0 when not sampled). */
	sampledPeakRssBytes: number;
	outputItems: number;
	storedBytes: number;
	problem?: string;
}

const sleep = async (ms: number) => await new Promise<void>((resolve) => setTimeout(resolve, ms));

function gc(): void {
	const collect = (globalThis as { gc?: () => void }).gc;
	if (collect) {
		collect();
		collect();
	}
}

type Runner = { warmUp: () => Promise<void>; run: () => Promise<Omit<WorkerResult, 'wallMs' | 'cpuMs' | 'rssBeforeBytes' | 'peakRssBytes' | 'sampledPeakRssBytes'>>; cleanUp: () => void };

/** The node: one execution with N input items, the way a Schedule Trigger or a sheet hands them over. */
async function nodeRunner(job: WorkerJob): Promise<Runner> {
	// Loaded here, not at the top: the baseline process must not carry n8n-core in its RSS.
	const { runNode, cleanupHarness } = await import('../test/harness');
	const { KlingOmniImage } = await import('../nodes/KlingOmniImage/KlingOmniImage.node');
	const { CometApiKlingApi } = await import('../credentials/CometApiKlingApi.credentials');

	const run = async (items: INodeExecutionData[], waitForCompletion: boolean) =>
		await runNode({
			nodeType: new KlingOmniImage(),
			credentialType: new CometApiKlingApi(),
			credentials: { apiKey: job.apiKey, baseUrl: job.apiUrl },
			parameters: {
				operation: 'createOmniImage',
				prompt: '={{ $json.prompt }}',
				resolution: job.resolution,
				n: job.imagesPerTask,
				waitForCompletion,
				// Max Concurrent Requests stays at its default.
				options: { pollInterval: job.pollIntervalMs / 1000, maxWaitTime: 900 },
			},
			inputItems: items,
			binaryMode: job.binaryMode,
		});

	return {
		// One small task through the whole path (create, poll, download into binary data), so code is
		// loaded and compiled as in an n8n instance that has run before.
		warmUp: async () => {
			const { error } = await run([{ json: { prompt: 'warm-up' } }], true);
			if (error) throw error;
		},
		run: async () => {
			const items = Array.from({ length: job.n }, (_, i) => ({ json: { prompt: `Batch prompt ${i}` } }));
			const { output, error } = await run(items, true);
			const produced = output[0] ?? [];
			let problem = error ? `the node failed: ${(error as Error).message}` : undefined;
			const expected = job.n * job.imagesPerTask;
			if (!problem && produced.length !== expected) problem = `${produced.length} output items, expected ${expected}`;
			const paired = produced.map((item) => (item.pairedItem as { item: number }).item);
			if (!problem && paired.some((item, i) => item !== Math.floor(i / job.imagesPerTask))) {
				problem = 'output items are not in input order';
			}
			const storedBytes = produced.reduce((sum, item) => sum + (item.binary?.data?.bytes ?? 0), 0);
			if (!problem && produced.some((item) => !item.binary?.data)) problem = 'an output item has no image';
			return { outputItems: produced.length, storedBytes, problem };
		},
		cleanUp: () => cleanupHarness(),
	};
}

/** A small concurrency limit for the floor node (the node's own limiter is what is being measured). */
function limitTo(max: number) {
	let running = 0;
	const queue: Array<() => void> = [];
	return async <T>(job: () => Promise<T>): Promise<T> => {
		while (running >= max) await new Promise<void>((resolve) => queue.push(resolve));
		running++;
		try {
			return await job();
		} finally {
			running--;
			queue.shift()?.();
		}
	};
}

/** The bare minimum of the same work through n8n's helpers, as an inline node. */
async function floorRunner(job: WorkerJob): Promise<Runner> {
	const { runNode, cleanupHarness } = await import('../test/harness');
	const { CometApiKlingApi } = await import('../credentials/CometApiKlingApi.credentials');
	const { NodeConnectionTypes } = await import('n8n-workflow');
	const credentialType = 'cometApiKlingApi';

	class FloorNode implements INodeType {
		description: INodeTypeDescription = {
			displayName: 'Floor',
			name: 'floor',
			group: ['transform'],
			version: 1,
			description: 'Same requests as the Kling node, no logic',
			defaults: { name: 'Floor' },
			inputs: [NodeConnectionTypes.Main],
			outputs: [NodeConnectionTypes.Main],
			credentials: [{ name: credentialType, required: true }],
			properties: [
				{ displayName: 'Prompt', name: 'prompt', type: 'string', default: '' },
				{ displayName: 'Poll Rounds', name: 'rounds', type: 'number', default: 1 },
			],
		};

		async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
			const items = this.getInputData();
			const base = String((await this.getCredentials(credentialType)).baseUrl).replace(/\/+$/, '');
			const apiLimit = limitTo(10);
			const downloadLimit = limitTo(10);
			const api = async (method: 'GET' | 'POST', path: string, body?: IDataObject) =>
				(await apiLimit(
					async () =>
						await this.helpers.httpRequestWithAuthentication.call(this, credentialType, {
							method,
							url: `${base}/kling/v1/images/omni-image${path}`,
							body,
							json: true,
						}),
				)) as { data: { task_id: string; task_result?: { images: Array<{ url: string }> } } };
			const ids = await Promise.all(
				items.map(async (_, i) => {
					const body = { prompt: this.getNodeParameter('prompt', i) as string, resolution: job.resolution, n: job.imagesPerTask };
					return (await api('POST', '', body)).data.task_id;
				}),
			);
			const rounds = this.getNodeParameter('rounds', 0) as number;
			let tasks: Array<Awaited<ReturnType<typeof api>>['data']> = [];
			for (let round = 0; round < rounds; round++) {
				await sleep(job.pollIntervalMs);
				tasks = await Promise.all(ids.map(async (id) => (await api('GET', `/${id}`)).data));
			}
			const output = await Promise.all(
				tasks.flatMap((task, i) =>
					(task.task_result?.images ?? []).map(async (image) => {
						const binary = await downloadLimit(async () => {
							const response = (await this.helpers.httpRequest({ url: image.url, encoding: 'stream', returnFullResponse: true })) as {
								body: Parameters<IExecuteFunctions['helpers']['prepareBinaryData']>[0];
							};
							return await this.helpers.prepareBinaryData(response.body, 'image.png', 'image/png');
						});
						return { json: {}, binary: { data: binary }, pairedItem: { item: i } };
					}),
				),
			);
			return [output];
		}
	}

	const run = async (items: INodeExecutionData[], rounds: number) =>
		await runNode({
			nodeType: new FloorNode(),
			credentialType: new CometApiKlingApi(),
			credentials: { apiKey: job.apiKey, baseUrl: job.apiUrl },
			parameters: { prompt: '={{ $json.prompt }}', rounds },
			inputItems: items,
			binaryMode: job.binaryMode,
		});
	return {
		warmUp: async () => {
			const { error } = await run([{ json: { prompt: 'warm-up' } }], 1);
			if (error) throw error;
		},
		run: async () => {
			const items = Array.from({ length: job.n }, (_, i) => ({ json: { prompt: `Batch prompt ${i}` } }));
			const { output, error } = await run(items, Math.ceil(job.taskDurationMs / job.pollIntervalMs));
			const produced = output[0] ?? [];
			const storedBytes = produced.reduce((sum, item) => sum + (item.binary?.data?.bytes ?? 0), 0);
			return { outputItems: produced.length, storedBytes, problem: error ? `the floor node failed: ${(error as Error).message}` : undefined };
		},
		cleanUp: () => cleanupHarness(),
	};
}

interface Envelope {
	code: number;
	message?: string;
	data: { task_id: string; task_status: string; task_result?: { images: Array<{ url: string }> } };
}

/** The sequential HTTP Request → Wait → IF loop, with plain HTTP calls. */
function baselineRunner(job: WorkerJob): Runner {
	const headers = { Authorization: `Bearer ${job.apiKey}`, 'Content-Type': 'application/json', Accept: 'application/json' };
	const api = async (method: string, path: string, body?: object): Promise<Envelope> => {
		const response = await fetch(`${job.apiUrl}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
		const envelope = (await response.json()) as Envelope;
		if (!response.ok || envelope.code !== 0) throw new Error(`HTTP ${response.status}: ${envelope.message}`);
		return envelope;
	};
	return {
		warmUp: async () => {
			await fetch(`${job.apiUrl}/kling/v1/images/omni-image/warm-up`, { headers }).then(async (r) => await r.arrayBuffer());
		},
		run: async () => {
			let storedBytes = 0;
			let outputItems = 0;
			for (let i = 0; i < job.n; i++) {
				const body = { model_name: 'kling-image-o1', prompt: `Batch prompt ${i}`, resolution: job.resolution, result_type: 'single', n: job.imagesPerTask, aspect_ratio: 'auto' };
				const taskId = (await api('POST', '/kling/v1/images/omni-image', body)).data.task_id;
				let task: Envelope['data'];
				do {
					await sleep(job.pollIntervalMs); // the Wait node
					task = (await api('GET', `/kling/v1/images/omni-image/${taskId}`)).data; // HTTP Request + IF
				} while (task.task_status !== 'succeed' && task.task_status !== 'failed');
				if (task.task_status === 'failed') return { outputItems, storedBytes, problem: `task ${taskId} failed` };
				for (const image of task.task_result?.images ?? []) {
					const response = await fetch(image.url);
					storedBytes += (await response.arrayBuffer()).byteLength;
					outputItems++;
				}
			}
			return { outputItems, storedBytes };
		},
		cleanUp: () => {},
	};
}

async function measure(job: WorkerJob, runner: Runner): Promise<WorkerResult> {
	gc();
	const rssBeforeBytes = process.memoryUsage.rss();
	let sampledPeakRssBytes = 0;
	const sampler = job.sampleRss
		? setInterval(() => (sampledPeakRssBytes = Math.max(sampledPeakRssBytes, process.memoryUsage.rss())), 5)
		: undefined;
	const cpuBefore = process.cpuUsage();
	const startedAt = performance.now();
	const outcome = await runner.run();
	const wallMs = performance.now() - startedAt;
	const cpu = process.cpuUsage(cpuBefore);
	if (sampler) clearInterval(sampler);
	return {
		...outcome,
		wallMs,
		cpuMs: (cpu.user + cpu.system) / 1000,
		rssBeforeBytes,
		peakRssBytes: process.resourceUsage().maxRSS * 1024,
		sampledPeakRssBytes,
	};
}

async function nextMessage<T>(type: string): Promise<T> {
	return await new Promise<T>((resolve) => {
		const onMessage = (message: { type: string }) => {
			if (message.type !== type) return;
			process.off('message', onMessage);
			resolve(message as T);
		};
		process.on('message', onMessage);
	});
}

async function main(): Promise<void> {
	const { job } = await nextMessage<{ job: WorkerJob }>('start');
	const runner =
		job.kind === 'node' ? await nodeRunner(job) : job.kind === 'floor' ? await floorRunner(job) : baselineRunner(job);
	try {
		await runner.warmUp();
		process.send!({ type: 'warmedUp' });
		await nextMessage('go');
		const result = await measure(job, runner);
		process.send!({ type: 'result', result });
	} finally {
		runner.cleanUp();
	}
}

main().then(
	() => process.disconnect(),
	(error: Error) => {
		process.stderr.write(`bench worker failed: ${error.stack ?? error.message}\n`);
		process.exit(1);
	},
);
