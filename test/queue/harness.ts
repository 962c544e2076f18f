/*
 * Queue-mode harness: the cluster from scripts/lib/queue-mode.js (Redis, Postgres, an n8n main and two
 * workers) with the packed package, a CometAPI simulator and an upload receiver on loopback, the credential
 * and the test workflows imported and published. Helpers read what n8n stored: executions through the
 * REST API, binary data through the main, which worker ran what from the workers' event logs.
 */
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startSimulator } from '../../simulator';
import { sleep } from '../support/wait';
import type { Simulator, SimulatorOptions } from '../../simulator';

/* eslint-disable @typescript-eslint/no-require-imports */
const host = require('../../scripts/lib/n8n-host');
const { freePort } = require('../../scripts/lib/n8n-instance');
const { QueueCluster, startRoundRobinProxy } = require('../../scripts/lib/queue-mode');
const examples = require('../../scripts/lib/examples');
const { startUploadReceiver } = require('../../scripts/lib/upload-receiver');
/* eslint-enable @typescript-eslint/no-require-imports */

export const KLING_NODE_TYPE: string = examples.KLING_NODE_TYPE;
const klingCredential = { cometApiKlingApi: { id: examples.CREDENTIAL.id, name: examples.CREDENTIAL.name } };

export interface QueueState {
	workDir: string;
	tarball: string;
	version: string;
	services: { redisVersion: string; postgresVersion: string; pgBinDir: string; redisServer: string };
}

/** Where the processes a cluster started are listed (see killRegistered in scripts/lib/queue-mode.js). */
export function registryFile(): string {
	return path.join(queueState().workDir, 'processes.json');
}

export function queueState(): QueueState {
	const file = process.env.KLING_QUEUE_STATE;
	if (!file) throw new Error('KLING_QUEUE_STATE is not set: run these tests with `npm run test:queue`');
	return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export interface Upload {
	fields: Record<string, string>;
	files: Array<{ field: string; fileName: string; mimeType: string; bytes: Buffer }>;
	error?: string;
}

export interface Worker {
	name: string;
	pid: number;
	logFile: string;
	eventLog: string;
	exited: Promise<{ code: number | null; signal: string | null }>;
	output(): string;
	stop(): Promise<void>;
	kill(signal?: string): Promise<{ code: number | null; signal: string | null }>;
}

/** An `n8n webhook` process (see startWebhookProcess in scripts/lib/queue-mode.js). */
export interface WebhookProcess {
	name: string;
	pid: number;
	port: number;
	url: string;
	logFile: string;
	output(): string;
}

/** The round-robin proxy in front of the webhook processes (startRoundRobinProxy in scripts/lib/queue-mode.js). */
export interface RoundRobinProxy {
	url: string;
	port: number;
	/** true: answer every request with 200 and forward nothing. */
	hold: boolean;
	requests: Array<{ at: number; method: string; url: string; target?: string; status?: number; body: string; error?: string }>;
	close(): Promise<void>;
}

/** A stored execution as GET /rest/executions lists it. */
export interface ExecutionSummary {
	id: string;
	status: string;
	mode: string;
	finished: boolean;
	workflowId: string;
	createdAt: string;
	startedAt: string | null;
	stoppedAt: string | null;
}

export const OWNER = { email: 'queue-owner@example.com', password: 'Queue-Mode-Password-1' };

/** Prompts with this marker make tasks that do not finish during the test (for stop and crash scenarios). */
export const HOLD_MARKER = ' HOLD';

export const WORKFLOWS = {
	/** Webhook (answers with the last node's first item) → 20 prompts → Create Omni Image → upload each image. */
	batch: { id: 'queueBatch', path: 'queue-batch' },
	/**
	 * The same with the webhook answering at once (the execution goes on in the background) and "Generate
	 * External Task ID" on (each task gets n8n-<execution id>-<item>-<random>).
	 */
	background: { id: 'queueBackground', path: 'queue-background' },
};

/**
 * Webhook → "Prompts" (Set: `count` prompts named after `run`) → "One item per prompt" (Split Out) →
 * "Create Omni Image" (the package's node, waiting, polling every second) → "Upload image" (HTTP Request
 * posting each image as a multipart file to the receiver, with the task id, the image URL and the execution id).
 */
export function batchWorkflow(
	{ id, path: webhookPath }: { id: string; path: string },
	{ responseMode, uploadUrl, externalIds = false }: { responseMode: 'lastNode' | 'onReceived'; uploadUrl: string; externalIds?: boolean },
): any {
	return {
		id,
		name: `Queue mode: ${id}`,
		active: false,
		nodes: [
			webhookStartNode(`${id}-1`, { path: webhookPath, responseMode }),
			{
				id: `${id}-2`,
				name: 'Prompts',
				type: 'n8n-nodes-base.set',
				typeVersion: 3.4,
				position: [220, 0],
				parameters: {
					assignments: {
						assignments: [
							{ id: 'a1', name: 'run', value: '={{ $json.body.run }}', type: 'string' },
							{
								id: 'a2',
								name: 'prompts',
								value:
									"={{ Array.from({ length: $json.body.count }, (_, i) => 'queue ' + $json.body.run + ' prompt ' + (i + 1) + ($json.body.marker || '')) }}",
								type: 'array',
							},
						],
					},
					options: {},
				},
			},
			{
				id: `${id}-3`,
				name: 'One item per prompt',
				type: 'n8n-nodes-base.splitOut',
				typeVersion: 1,
				position: [440, 0],
				parameters: { fieldToSplitOut: 'prompts', include: 'allOtherFields', options: { destinationFieldName: 'prompt' } },
			},
			createImageNode(`${id}-4`, 'Create Omni Image', [660, 0], {
				waitForCompletion: true,
				additionalFields: externalIds ? { generateExternalTaskId: true } : {},
				options: { pollInterval: 1, outputMode: 'imagePerItem', binaryPropertyName: 'data' },
			}),
			uploadImageNode(`${id}-5`, [880, 0], uploadUrl),
		],
		connections: {
			Webhook: { main: [[{ node: 'Prompts', type: 'main', index: 0 }]] },
			Prompts: { main: [[{ node: 'One item per prompt', type: 'main', index: 0 }]] },
			'One item per prompt': { main: [[{ node: 'Create Omni Image', type: 'main', index: 0 }]] },
			'Create Omni Image': { main: [[{ node: 'Upload image', type: 'main', index: 0 }]] },
		},
		settings: { executionOrder: 'v1' },
		pinData: {},
	};
}

/** An HTTP Request node that uploads each item's image (binary field `data`) to the loopback receiver. */
export function uploadImageNode(id: string, position: [number, number], uploadUrl: string, extraFields: string[] = []): any {
	const field = (name: string) => ({ name, value: `={{ $json.${name} }}` });
	return {
		id,
		name: 'Upload image',
		type: 'n8n-nodes-base.httpRequest',
		typeVersion: 4.2,
		position,
		parameters: {
			method: 'POST',
			url: uploadUrl,
			sendBody: true,
			contentType: 'multipart-form-data',
			bodyParameters: {
				parameters: [
					{ parameterType: 'formBinaryData', name: 'file', inputDataFieldName: 'data' },
					field('task_id'),
					...extraFields.map(field),
					{ name: 'image_url', value: '={{ $json.image.url }}' },
					{ name: 'execution_id', value: '={{ $execution.id }}' },
				],
			},
			options: {},
		},
	};
}

/** The shared pause of the tests, under the name the queue scenarios use. */
export const delay = sleep;

/** Polls `check` until it returns a value other than undefined/false. */
export async function waitFor<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, everyMs = 250): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await check();
		if (value !== undefined && value !== false) return value as T;
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
		await delay(everyMs);
	}
}

export class QueueHarness {
	private cookie = '';

	/** With `webhookProcesses` set: the balancer in front of them (WEBHOOK_URL of the main points at it). */
	proxy: RoundRobinProxy | undefined;

	private constructor(
		readonly cluster: any,
		readonly sim: Simulator,
		readonly receiver: { url: string; uploads: Upload[]; close(): Promise<void> },
		readonly baseUrl: string,
		readonly state: QueueState,
	) {}

	/** Starts everything; on failure stops what it started and rethrows. */
	static async start(
		options: {
			simulator?: SimulatorOptions;
			env?: Record<string, string>;
			mainEnv?: Record<string, string>;
			/** More workflows to import and publish, given the upload receiver's URL (their webhooks are not awaited). */
			workflows?: (uploadUrl: string) => any[];
			/** How many `n8n worker` processes (default 2). */
			workers?: number;
			/** How many `n8n webhook` processes to start behind a round-robin proxy (default none). */
			webhookProcesses?: number;
		} = {},
	): Promise<QueueHarness> {
		const state = queueState();
		host.setQuiet(process.env.KLING_QUEUE_VERBOSE !== '1');
		const n8n = await host.ensureN8n(state.version);
		const cluster = new QueueCluster(n8n, {
			workDir: fs.mkdtempSync(path.join(state.workDir, 'cluster-')),
			env: options.env,
			mainEnv: options.mainEnv,
			workers: options.workers,
			// global-setup.js (signals) and global-teardown.js kill from this list what is left behind.
			registryFile: registryFile(),
		});
		let sim: Simulator | undefined;
		let receiver: any;
		try {
			const apiKey = `sk-queue-${crypto.randomBytes(16).toString('hex')}`;
			sim = await startSimulator({
				taskDurationMs: 1500,
				taskPlan: (body) =>
					typeof body?.prompt === 'string' && body.prompt.includes(HOLD_MARKER) ? { durationMs: 60 * 60 * 1000 } : undefined,
				...options.simulator,
				apiKey,
			});
			receiver = await startUploadReceiver();
			const instance = await cluster.startServices();
			await instance.installPackage(state.tarball);
			await instance.importCredentials([examples.credentialEntry({ apiKey, baseUrl: sim.apiUrl })]);
			const extra: any[] = options.workflows?.(receiver.url) ?? [];
			await instance.importWorkflows([
				batchWorkflow(WORKFLOWS.batch, { responseMode: 'lastNode', uploadUrl: receiver.url }),
				batchWorkflow(WORKFLOWS.background, { responseMode: 'onReceived', uploadUrl: receiver.url, externalIds: true }),
				...extra,
			]);
			for (const { id } of [...Object.values(WORKFLOWS), ...extra]) await instance.command(['publish:workflow', `--id=${id}`]);
			const port = await freePort();
			const proxyPort = options.webhookProcesses ? await freePort() : undefined;
			// n8n's scaled set-up: the main's WEBHOOK_URL is the balancer in front of the webhook processes.
			const env = proxyPort ? { WEBHOOK_URL: `http://127.0.0.1:${proxyPort}/` } : {};
			await cluster.startN8n({ port, ownerEmail: OWNER.email, ownerPassword: OWNER.password, env });
			const harness = new QueueHarness(cluster, sim, receiver, `http://127.0.0.1:${port}`, state);
			if (options.webhookProcesses) {
				const names = Array.from({ length: options.webhookProcesses }, (_, i) => `webhook-${i + 1}`);
				const processes: WebhookProcess[] = await cluster.startWebhookProcesses(names);
				harness.proxy = await startRoundRobinProxy({ targets: processes.map((p) => p.url), port: proxyPort });
			}
			await harness.login();
			// The main registers production webhooks as it starts; a POST-only webhook answers GET with 404
			// "not registered for GET" once it is there.
			for (const { path: webhookPath } of Object.values(WORKFLOWS)) {
				await waitFor(
					`webhook ${webhookPath}`,
					async () => /not registered for GET/.test(await (await fetch(`${harness.baseUrl}/webhook/${webhookPath}`)).text()),
					30000,
				);
			}
			return harness;
		} catch (error) {
			await cluster.stop();
			await Promise.allSettled([sim?.close(), receiver?.close()]);
			throw error;
		}
	}

	get workers(): Worker[] {
		return this.cluster.workers;
	}

	get main(): { pid: number; logFile: string; output(): string } {
		return this.cluster.main;
	}

	get webhookProcesses(): WebhookProcess[] {
		return this.cluster.webhookProcesses;
	}

	async stop(): Promise<void> {
		await this.proxy?.close();
		await this.cluster.stop();
		await Promise.allSettled([this.sim.close(), this.receiver.close()]);
	}

	// --- n8n's REST API (as the owner) -----------------------------------------------------------------

	private async login(): Promise<void> {
		const res = await fetch(`${this.baseUrl}/rest/login`, {
			method: 'POST',
			headers: { 'content-type': 'application/json' },
			body: JSON.stringify({ emailOrLdapLoginId: OWNER.email, password: OWNER.password }),
		});
		if (!res.ok) throw new Error(`login failed: HTTP ${res.status} ${await res.text()}`);
		this.cookie = (res.headers.get('set-cookie') || '').split(';')[0];
	}

	async rest(method: string, url: string, body?: unknown): Promise<any> {
		const res = await fetch(`${this.baseUrl}${url}`, {
			method,
			headers: { 'content-type': 'application/json', cookie: this.cookie },
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await res.text();
		if (!res.ok) throw new Error(`${method} ${url}: HTTP ${res.status} ${text.slice(0, 500)}`);
		return text ? JSON.parse(text) : undefined;
	}

	/** Executions of a workflow as n8n stores them (GET /rest/executions refuses limit > 100). */
	async executions(workflowId: string): Promise<ExecutionSummary[]> {
		const filter = encodeURIComponent(JSON.stringify({ workflowId }));
		const { data } = await this.rest('GET', `/rest/executions?filter=${filter}&limit=100`);
		return data.results;
	}

	/** One execution with its run data (n8n sends it "flatted"; the parser comes with n8n). */
	async execution(id: string): Promise<{ summary: any; data: any; raw: string }> {
		const { data } = await this.rest('GET', `/rest/executions/${id}`);
		// eslint-disable-next-line @typescript-eslint/no-require-imports
		const flatted = require(require.resolve('flatted', { paths: [path.join(host.n8nDir(this.state.version), 'node_modules', 'n8n')] }));
		return { summary: data, data: data.data ? flatted.parse(data.data) : undefined, raw: data.data ?? '' };
	}

	/** The bytes n8n holds for a binary, read through the main (binary data in the database). */
	async binaryBytes(id: string): Promise<Buffer> {
		const res = await fetch(`${this.baseUrl}/rest/binary-data?id=${encodeURIComponent(id)}&action=view`, {
			headers: { cookie: this.cookie },
		});
		if (!res.ok) throw new Error(`binary ${id}: HTTP ${res.status}`);
		return Buffer.from(await res.arrayBuffer());
	}

	/** Rows of a query against n8n's Postgres database (psql, tab-separated, unaligned). */
	async sql(query: string): Promise<string[][]> {
		const pg = this.cluster.postgres;
		const { stdout } = await promisify(execFile)(
			path.join(this.state.services.pgBinDir, 'psql'),
			['-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', pg.database, '-X', '-A', '-t', '-F', '\t', '-c', query],
			{ env: { ...process.env, PGPASSWORD: pg.password }, maxBuffer: 64 * 1024 * 1024 },
		);
		return stdout.split('\n').filter((line) => line !== '').map((line) => line.split('\t'));
	}

	/** POST to a production webhook; resolves with the status, the body and how long it took. */
	async callWebhook(webhookPath: string, body: unknown): Promise<{ status: number; body: string; ms: number }> {
		const started = Date.now();
		const res = await fetch(`${this.baseUrl}/webhook/${webhookPath}`, {
			method: 'POST',
			headers: { 'content-type': 'application/json' },
			body: JSON.stringify(body),
		});
		const text = await res.text();
		return { status: res.status, body: text, ms: Date.now() - started };
	}

	// --- what the workers did ------------------------------------------------------------------------

	/**
	 * Which worker took which execution, from each worker's event log (n8n.queue.job.dequeued, written by
	 * the worker that took the job). Executions not found in any log are missing from the map.
	 */
	workerOfExecutions(): Map<string, string> {
		const byExecution = new Map<string, string>();
		for (const worker of this.workers) {
			for (const event of readEventLog(worker.eventLog)) {
				if (event.eventName === 'n8n.queue.job.dequeued' && event.payload?.executionId) {
					byExecution.set(String(event.payload.executionId), worker.name);
				}
			}
		}
		return byExecution;
	}

	/**
	 * Which worker ran each of these executions, once every one shows in a worker's event log, checked
	 * against the workers' own log lines; and that the main ran none of them.
	 */
	async workersOf(executionIds: string[]): Promise<Map<string, string>> {
		const workerOf = await waitFor('every execution in a worker event log', () => {
			const map = this.workerOfExecutions();
			return executionIds.every((id) => map.has(id)) && map;
		}, 15000);
		const fromLogs = this.workerOfExecutionsFromLogs();
		for (const id of executionIds) expect(fromLogs.get(id)).toBe(workerOf.get(id));
		expect(this.main.output()).not.toMatch(/Worker started execution/);
		return workerOf;
	}

	/** The same from the workers' own log lines ("Worker started execution N (job M)"), as a cross-check. */
	workerOfExecutionsFromLogs(): Map<string, string> {
		const byExecution = new Map<string, string>();
		for (const worker of this.workers) {
			for (const match of worker.output().matchAll(/Worker started execution (\d+) \(job \d+\)/g)) {
				byExecution.set(match[1], worker.name);
			}
		}
		return byExecution;
	}

	// --- what the simulator received ------------------------------------------------------------------

	/** Create requests whose prompt belongs to a run ("queue <run> prompt N"). */
	creates(run: string): Array<{ prompt: string; taskId?: string; externalTaskId?: string; at: number }> {
		return this.sim
			.apiRequests('create')
			.filter((r) => typeof r.body?.prompt === 'string' && r.body.prompt.startsWith(`queue ${run} prompt `))
			.map((r) => ({ prompt: r.body.prompt, taskId: r.taskId, externalTaskId: r.body.external_task_id, at: r.at }));
	}

	/** Query requests for these tasks. */
	queries(taskIds: Iterable<string>): Array<{ taskId: string; at: number }> {
		const ids = new Set(taskIds);
		return this.sim
			.apiRequests('query')
			.filter((r) => r.taskId && ids.has(r.taskId))
			.map((r) => ({ taskId: r.taskId!, at: r.at }));
	}
}

/** n8n's event log: one JSON message per line (a line that does not parse is skipped). */
export function readEventLog(file: string): any[] {
	const files = [file, ...[1, 2, 3].map((n) => file.replace(/\.log$/, `-${n}.log`))].filter((f) => fs.existsSync(f));
	const events: any[] = [];
	for (const f of files) {
		for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
			if (!line.trim()) continue;
			try {
				events.push(JSON.parse(line));
			} catch {}
		}
	}
	return events;
}

/** The trigger node's name in the callback workflows below. */
export const TRIGGER_NODE = 'Kling Omni Image Trigger';

/**
 * A batch created with a callback URL: Webhook at `path` (answers with every created task) → Code making
 * `count` prompts from the POSTed `{run, count, callback_url}` (external task ID `<prefix>-<run>-<n>`) →
 * Create Omni Image, not waiting, with that Callback URL.
 */
export function callbackBatchWorkflow({ id, name, path: webhookPath, prefix }: { id: string; name: string; path: string; prefix: string }): any {
	return {
		id,
		name,
		active: false,
		nodes: [
			webhookStartNode(`${id}-1`, { path: webhookPath, responseMode: 'lastNode', responseData: 'allEntries' }),
			{
				id: `${id}-2`,
				name: 'Prompts',
				type: 'n8n-nodes-base.code',
				typeVersion: 2,
				position: [220, 0],
				parameters: {
					jsCode:
						'const { run, count, callback_url } = $input.first().json.body;\n' +
						'return Array.from({ length: count }, (_, i) => ({ json: {\n' +
						`  prompt: '${prefix} ' + run + ' prompt ' + (i + 1),\n` +
						`  external_task_id: '${prefix}-' + run + '-' + (i + 1),\n` +
						'  callback_url,\n' +
						'} }));',
				},
			},
			createImageNode(`${id}-3`, 'Create tasks', [440, 0], {
				waitForCompletion: false,
				additionalFields: { callbackUrl: '={{ $json.callback_url }}', externalTaskId: '={{ $json.external_task_id }}' },
				options: {},
			}),
		],
		connections: {
			Webhook: { main: [[{ node: 'Prompts', type: 'main', index: 0 }]] },
			Prompts: { main: [[{ node: 'Create tasks', type: 'main', index: 0 }]] },
		},
		settings: { executionOrder: 'v1' },
		pinData: {},
	};
}

/** Finished tasks by callback: the Kling trigger (downloads, one item per image) → upload each image. */
export function callbackTriggerWorkflow({ id, name, webhookId, uploadUrl }: { id: string; name: string; webhookId: string; uploadUrl: string }): any {
	return {
		id,
		name,
		active: false,
		nodes: [
			{
				id: `${id}-1`,
				name: TRIGGER_NODE,
				type: examples.KLING_TRIGGER_NODE_TYPE,
				typeVersion: 1,
				position: [0, 0],
				webhookId,
				parameters: { downloadImages: true, options: { outputMode: 'imagePerItem', binaryPropertyName: 'data' } },
				credentials: klingCredential,
			},
			uploadImageNode(`${id}-2`, [220, 0], uploadUrl, ['external_task_id']),
		],
		connections: { [TRIGGER_NODE]: { main: [[{ node: 'Upload image', type: 'main', index: 0 }]] } },
		settings: { executionOrder: 'v1' },
		pinData: {},
	};
}

/** A Create Omni Image node (one 1K 1:1 image per prompt item) with the given switches and options. */
function createImageNode(id: string, name: string, position: [number, number], parameters: Record<string, unknown>): any {
	return {
		id,
		name,
		type: KLING_NODE_TYPE,
		typeVersion: 1,
		position,
		parameters: {
			operation: 'createOmniImage',
			prompt: '={{ $json.prompt }}',
			modelName: 'kling-image-o1',
			resolution: '1k',
			resultType: 'single',
			n: 1,
			aspectRatio: '1:1',
			...parameters,
		},
		credentials: klingCredential,
	};
}

/** The Webhook node (POST) a test workflow starts from. */
function webhookStartNode(id: string, parameters: Record<string, unknown>): any {
	return {
		id,
		name: 'Webhook',
		type: 'n8n-nodes-base.webhook',
		typeVersion: 2,
		position: [0, 0],
		webhookId: crypto.randomUUID(),
		parameters: { httpMethod: 'POST', ...parameters, options: {} },
	};
}
