/**
 * Fault injection: every fault of a real network and a busy API ends in a result (after a retry)
 * or a clear error naming the task and item; a create is never sent twice unless the first one
 * was certainly rejected; with "Continue On Fail" the other items still complete.
 *
 * Items run with "Max Concurrent Requests" 1, so the first queued fault always hits item 0.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { INodeExecutionData } from 'n8n-workflow';

import {
	backoffDelay,
	DEFAULT_RETRY_POLICY as RETRY,
	parseRetryAfter,
	retryDelay,
} from '../nodes/shared/request/retry';
import { createReferencePng, startSimulator, type Fault, type Simulator } from '../simulator';
import { binaryToBuffer } from './harness';
import { API_KEY, createParams, errorMessage, runKling, startSim, withFastBackoff } from './support/kling';
import { freePort } from './support/net';
import { SEED, SEED_FAIL, SEED_FAIL_REASON, seededTaskPlan, seedTasks } from './support/simulator-http';
import { sleep } from './support/wait';

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim({ taskPlan: seededTaskPlan });
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

// ---------------------------------------------------------------------------------------------
// Helpers

type Json = Record<string, any>;

const ONE_AT_A_TIME = { pollInterval: 1, maxWaitTime: 30, maxConcurrentRequests: 1 };

/** Two items, each creating a task; item 0 is sent first. */
async function createTwo(options: Json = {}, additionalFields: Json = { generateExternalTaskId: true }, waitForCompletion = false) {
	return await runKling(
		sim,
		createParams({
			prompt: '={{ $json.prompt }}',
			waitForCompletion,
			additionalFields,
			options: { ...ONE_AT_A_TIME, ...options },
		}),
		{ inputItems: [{ json: { prompt: 'item 0' } }, { json: { prompt: 'item 1' } }], continueOnFail: true },
	);
}

/** Waits for two given tasks and downloads their images. */
async function waitForTwo(taskIds: string[], options: Json = {}) {
	return await runKling(
		sim,
		{ operation: 'waitForCompletion', taskId: '={{ $json.task_id }}', options: { ...ONE_AT_A_TIME, ...options } },
		{ inputItems: taskIds.map((task_id) => ({ json: { task_id } })), continueOnFail: true },
	);
}

function createsOf(prompt: string) {
	return sim.apiRequests('create').filter((request) => request.body?.prompt === prompt);
}

function queriesOf(taskId: string) {
	return sim.apiRequests('query').filter((request) => request.taskId === taskId);
}

function imageRequestsOf(taskId: string) {
	return sim.imageRequests().filter((request) => request.taskId === taskId);
}

function errorJson(item: INodeExecutionData): { error: string; description?: string; task_id?: string } {
	expect(item.json).toHaveProperty('error');
	return item.json as { error: string; description?: string; task_id?: string };
}

/** An image item of a succeeded task carrying the exact bytes the image host serves. */
async function expectImageItem(item: INodeExecutionData, taskId: string, itemIndex: number): Promise<void> {
	expect(item.json).toMatchObject({ task_id: taskId, status: 'succeed' });
	expect(item.pairedItem).toEqual({ item: itemIndex });
	const url = (item.json.image as { url: string }).url;
	expect(await binaryToBuffer(item.binary!.data)).toEqual(sim.expectedImageBytes(url));
}

function retryAfterZero(status: number, times = 1): Fault {
	return { route: 'query', type: 'status', status, headers: { 'Retry-After': '0' }, times };
}


// ---------------------------------------------------------------------------------------------

describe('retry policy constants', () => {
	it('backs off exponentially with jitter, capped, within a bounded number of attempts and time', () => {
		for (let attempt = 1; attempt <= 8; attempt++) {
			const ceiling = Math.min(RETRY.maxDelayMs, RETRY.baseDelayMs * 2 ** (attempt - 1));
			for (let sample = 0; sample < 50; sample++) {
				const delay = backoffDelay(RETRY, attempt);
				expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
				expect(delay).toBeLessThanOrEqual(ceiling);
			}
		}
		expect(RETRY.maxAttempts).toBe(5);
		expect(RETRY.maxRetryTimeMs).toBe(120_000);
		// Worst case of all backoff waits together stays inside the time budget.
		let worst = 0;
		for (let attempt = 1; attempt < RETRY.maxAttempts; attempt++) {
			worst += Math.min(RETRY.maxDelayMs, RETRY.baseDelayMs * 2 ** (attempt - 1));
		}
		expect(worst).toBeLessThan(RETRY.maxRetryTimeMs);
	});

	it('reads Retry-After as seconds or an HTTP date, and ignores anything else', () => {
		expect(parseRetryAfter('0')).toBe(0);
		expect(parseRetryAfter('3')).toBe(3000);
		expect(parseRetryAfter(2)).toBe(2000);
		const inFiveSeconds = new Date(Date.now() + 5000).toUTCString();
		expect(parseRetryAfter(inFiveSeconds)).toBeGreaterThan(3000);
		expect(parseRetryAfter(inFiveSeconds)).toBeLessThanOrEqual(5000);
		expect(parseRetryAfter('soon')).toBeUndefined();
		expect(parseRetryAfter(undefined)).toBeUndefined();
	});

	it('stops retrying after the last attempt, or when a wait would outlast the time budget', () => {
		const now = Date.now();
		expect(retryDelay(RETRY, 1, now, 0)).toBe(0);
		expect(retryDelay(RETRY, RETRY.maxAttempts - 1, now, 0)).toBe(0);
		expect(retryDelay(RETRY, RETRY.maxAttempts, now, 0)).toBeUndefined();
		expect(retryDelay(RETRY, 1, now, 3_600_000)).toBeUndefined();
		expect(retryDelay(RETRY, 1, now - RETRY.maxRetryTimeMs - 1, 0)).toBeUndefined();
	});
});

describe('create faults that may have created a task: sent once, error names the external task id', () => {
	const cases: Array<{ name: string; fault: Fault; options?: Json; what: RegExp; created: boolean }> = [
		{
			name: 'connection dropped with no answer (task not created)',
			fault: { route: 'create', type: 'drop' },
			what: /\(connection lost \(ECONNRESET\)\)/,
			created: false,
		},
		{
			name: 'connection dropped with no answer (task created)',
			fault: { route: 'create', type: 'drop', afterCreate: true },
			what: /\(connection lost \(ECONNRESET\)\)/,
			created: true,
		},
		{
			name: 'connection dropped mid-response',
			fault: { route: 'create', type: 'dropMidBody' },
			what: /\(connection lost \(/,
			created: true,
		},
		{
			name: 'response body cut short',
			fault: { route: 'create', type: 'truncate' },
			what: /\(connection lost \(/,
			created: true,
		},
		{
			name: 'response slower than the request timeout',
			fault: { route: 'create', type: 'delay', ms: 2500 },
			options: { requestTimeout: 1 },
			what: /\(no answer before the request timeout\)/,
			created: true,
		},
		{
			name: 'malformed JSON with HTTP 200',
			fault: { route: 'create', type: 'malformed' },
			what: /\(unreadable answer \(not JSON\) \(HTTP 200\)\)/,
			created: false,
		},
		{
			name: 'HTTP 503',
			fault: { route: 'create', type: 'status', status: 503 },
			what: /\(Service Unavailable \(HTTP 503, code 503, request ID [\w-]+\)\)/,
			created: false,
		},
	];

	it.each(cases)('$name', async ({ fault, options, what, created }) => {
		sim.addFault(fault);
		const { output, error } = await createTwo(options);
		expect(error).toBeUndefined();

		const [first] = createsOf('item 0');
		expect(createsOf('item 0')).toHaveLength(1);
		expect(first.fault).toBe(fault.type);
		expect(first.afterCreate).toBe(created);
		const externalId = first.body.external_task_id as string;

		const failed = errorJson(output[0][0]);
		expect(failed.error).toMatch(what);
		expect(failed.error).toMatch(/the task may have been created and charged \[item 0\]$/);
		expect(failed.description).toContain(`Look for external task ID "${externalId}"`);
		expect(failed.description).toContain('It was not sent again');
		// The id in the error finds the task when it was created.
		const found = [...sim.tasks.values()].filter((task) => task.externalTaskId === externalId);
		expect(found).toHaveLength(created ? 1 : 0);

		expect(createsOf('item 1')).toHaveLength(1);
		expect(output[0][1].json).toMatchObject({ task_id: createsOf('item 1')[0].taskId, status: 'submitted' });
		expect(output[0][1].pairedItem).toEqual({ item: 1 });
	});

	it('without a generated external id, says how to find the task anyway', async () => {
		sim.addFault({ route: 'create', type: 'drop', afterCreate: true });
		const { output } = await createTwo({}, {});
		expect(createsOf('item 0')).toHaveLength(1);
		const failed = errorJson(output[0][0]);
		expect(failed.error).toMatch(/may have been created and charged \[item 0\]/);
		expect(failed.description).toMatch(/Check your CometAPI task log.*turn on "Generate External Task ID"/);
	});

	it('without Continue On Fail, stops with that error and sends nothing more', async () => {
		sim.addFault({ route: 'create', type: 'dropMidBody' });
		const { error, output } = await runKling(
			sim,
			createParams({ prompt: '={{ $json.prompt }}', waitForCompletion: false, options: ONE_AT_A_TIME }),
			{ inputItems: [{ json: { prompt: 'item 0' } }, { json: { prompt: 'item 1' } }] },
		);
		expect(output).toEqual([]);
		expect(errorMessage(error)).toMatch(/may have been created and charged \[item 0\]/);
		// The run stops creating at its first failure: item 1, still queued, is never sent and is reported so.
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect((error as { description?: string }).description).toContain('Items never sent (nothing charged for them): 1.');
	});
});

describe('create faults that certainly created nothing', () => {
	const rejections: Array<{ name: string; fault: Fault; message: RegExp; description?: RegExp }> = [
		{
			name: 'HTTP 200 with a non-zero code',
			fault: { route: 'create', type: 'code', code: 1201, message: 'Invalid parameter: prompt' },
			message: /^CometAPI could not create the image task: Invalid parameter: prompt \(HTTP 200, code 1201, request ID [\w-]+\) \[item 0\]$/,
		},
		{
			name: 'HTTP 400 explicit rejection',
			fault: { route: 'create', type: 'status', status: 400, body: { code: 1201, message: 'Invalid parameter: image_list' } },
			message: /^CometAPI could not create the image task: Invalid parameter: image_list \(HTTP 400, code 1201\) \[item 0\]$/,
		},
		{
			name: 'insufficient balance (CometAPI style: HTTP 403 insufficient_user_quota)',
			fault: {
				route: 'create',
				type: 'status',
				status: 403,
				body: { code: 'insufficient_user_quota', message: 'user quota is not enough' },
			},
			message: /user quota is not enough \(HTTP 403, code insufficient_user_quota\) \[item 0\]/,
			description: /balance or quota does not cover this request/,
		},
		{
			name: 'insufficient balance (Kling style: HTTP 429, code 1102), not retried as a rate limit',
			fault: {
				route: 'create',
				type: 'status',
				status: 429,
				body: { code: 1102, message: 'Resource pack depleted or expired' },
			},
			message: /Resource pack depleted or expired \(HTTP 429, code 1102\) \[item 0\]/,
			description: /balance or quota does not cover this request/,
		},
		{
			name: 'account in arrears (HTTP 200, code 1101)',
			fault: { route: 'create', type: 'code', code: 1101, message: 'Account in arrears, insufficient balance' },
			message: /Account in arrears, insufficient balance \(HTTP 200, code 1101, request ID [\w-]+\) \[item 0\]/,
			description: /balance or quota does not cover this request/,
		},
	];

	it.each(rejections)('$name: one create, a clear error, other items complete', async ({ fault, message, description }) => {
		sim.addFault(fault);
		const { output, error } = await createTwo();
		expect(error).toBeUndefined();
		expect(createsOf('item 0')).toHaveLength(1);
		expect(createsOf('item 0')[0].afterCreate).toBe(false);
		const failed = errorJson(output[0][0]);
		expect(failed.error).toMatch(message);
		if (description) expect(failed.description).toMatch(description);
		expect(failed.description ?? '').not.toMatch(/Check the API key/);
		expect(output[0][1].json).toMatchObject({ status: 'submitted' });
		expect(sim.tasks.size).toBe(1);
	});

	it('401 bad key: every item fails with a hint to check the key, nothing is retried', async () => {
		const { output, error } = await runKling(
			sim,
			createParams({ prompt: '={{ $json.prompt }}', waitForCompletion: false, options: ONE_AT_A_TIME }),
			{
				inputItems: [{ json: { prompt: 'item 0' } }, { json: { prompt: 'item 1' } }],
				continueOnFail: true,
				credentials: { apiKey: 'sk-wrong-key', baseUrl: sim.apiUrl },
			},
		);
		expect(error).toBeUndefined();
		expect(sim.apiRequests('create').map((request) => request.status)).toEqual([401, 401]);
		for (const [index, item] of output[0].entries()) {
			const failed = errorJson(item);
			expect(failed.error).toMatch(
				new RegExp(`^CometAPI could not create the image task: Invalid API key \\(HTTP 401, code 401, request ID [\\w-]+\\) \\[item ${index}\\]$`),
			);
			expect(failed.description).toBe('Check the API key in the CometAPI credential.');
		}
		expect(sim.tasks.size).toBe(0);
	});

	it('401 as HTTP 200 with code 401 (errorStyle code200) is the same clear error', async () => {
		const codeSim = await startSim({ errorStyle: 'code200' });
		try {
			const { error } = await runKling(codeSim, createParams({ waitForCompletion: false }), {
				credentials: { apiKey: 'sk-wrong-key', baseUrl: codeSim.apiUrl },
			});
			expect(errorMessage(error)).toMatch(/Invalid API key \(HTTP 200, code 401, request ID [\w-]+\) \[item 0\]/);
			expect(codeSim.apiRequests('create')).toHaveLength(1);
		} finally {
			await codeSim.close();
		}
	});
});

describe('create retries only what was certainly rejected', () => {
	/** Rejections hit whichever item is next in line; each item must still create exactly one task. */
	function expectOneTaskPerItem(rejected: number): void {
		const creates = sim.apiRequests('create');
		expect(creates.filter((request) => request.fault)).toHaveLength(rejected);
		expect(creates).toHaveLength(rejected + 2);
		for (const prompt of ['item 0', 'item 1']) {
			expect(createsOf(prompt).filter((request) => request.afterCreate)).toHaveLength(1);
			expect(createsOf(prompt).at(-1)!.afterCreate).toBe(true);
		}
		expect(sim.tasks.size).toBe(2);
	}

	it('a burst of 429 with Retry-After: 0 is retried until accepted: one task, one result per item', async () => {
		sim.addFault({ route: 'create', type: 'status', status: 429, headers: { 'Retry-After': '0' }, times: 3 });
		const { output, error } = await createTwo();
		expect(error).toBeUndefined();
		expect(createsOf('item 0')[0].status).toBe(429);
		expectOneTaskPerItem(3);
		expect(output[0].map((item) => item.json.status)).toEqual(['submitted', 'submitted']);
	});

	it('a 429 without Retry-After is retried after a backoff; so is HTTP 200 with code 429', async () => {
		sim.addFault({ route: 'create', type: 'status', status: 429 });
		sim.addFault({ route: 'create', type: 'code', code: 429, message: 'Too many requests' });
		const { output } = await createTwo();
		expect(sim.apiRequests('create').map((request) => request.fault ?? 'ok').slice(0, 2)).toEqual(['status', 'code']);
		expectOneTaskPerItem(2);
		expect(output[0].map((item) => item.json.status)).toEqual(['submitted', 'submitted']);
	});

	it('honours Retry-After: the retry waits as long as the API asked', async () => {
		sim.addFault({ route: 'create', type: 'status', status: 429, headers: { 'Retry-After': '1' } });
		await createTwo();
		const [rejected, accepted] = createsOf('item 0');
		expect(accepted.afterCreate).toBe(true);
		expect(accepted.at - rejected.at).toBeGreaterThanOrEqual(950);
	});

	it('gives up at once when Retry-After is beyond the retry time budget', async () => {
		sim.addFault({ route: 'create', type: 'status', status: 429, headers: { 'Retry-After': '3600' } });
		const { output } = await createTwo();
		expect(createsOf('item 0')).toHaveLength(1);
		const failed = errorJson(output[0][0]);
		expect(failed.error).toMatch(/^CometAPI could not create the image task: Too Many Requests \(HTTP 429, code 429, request ID [\w-]+\) \[item 0\]$/);
		expect(failed.description).toMatch(/kept rate-limiting/);
		expect(output[0][1].json).toMatchObject({ status: 'submitted' });
	});

	it(`stops after ${RETRY.maxAttempts} attempts of an endless 429 burst, with nothing created`, async () => {
		sim.addFault({ route: 'create', type: 'status', status: 429, headers: { 'Retry-After': '0' }, times: 50 });
		const { output } = await createTwo();
		expect(createsOf('item 0')).toHaveLength(RETRY.maxAttempts);
		expect(createsOf('item 0').every((request) => request.afterCreate === false)).toBe(true);
		expect(errorJson(output[0][0]).error).toMatch(/Too Many Requests \(HTTP 429.*\[item 0\]$/);
	});

	it('connection refused before sending is retried: the API, once up, receives exactly one create', async () => {
		const port = await freePort();
		let late: Simulator | undefined;
		const starting = new Promise<void>((resolve) => {
			setTimeout(() => {
				void startSimulator({ apiKey: API_KEY, apiPort: port, taskDurationMs: 300 }).then((started) => {
					late = started;
					resolve();
				});
			}, 150);
		});
		try {
			const { output, error } = await runKling(sim, createParams({ waitForCompletion: false }), {
				credentials: { apiKey: API_KEY, baseUrl: `http://127.0.0.1:${port}` },
			});
			await starting;
			expect(error).toBeUndefined();
			expect(late!.apiRequests('create')).toHaveLength(1);
			expect(output[0][0].json).toMatchObject({ task_id: [...late!.tasks.keys()][0], status: 'submitted' });
		} finally {
			await starting;
			await late?.close();
		}
	});

	it('connection refused on every attempt ends in an error naming the URL, after the last attempt', async () => {
		const port = await freePort();
		const { error } = await withFastBackoff(
			async () =>
				await runKling(sim, createParams({ waitForCompletion: false }), {
					credentials: { apiKey: API_KEY, baseUrl: `http://127.0.0.1:${port}` },
				}),
		);
		expect(errorMessage(error)).toBe(
			`Could not reach CometAPI at http://127.0.0.1:${port} to create the image task: connection failed (ECONNREFUSED) [item 0]`,
		);
		expect((error as { description?: string }).description).toMatch(/Check the Base URL/);
	});
});

describe('task query faults (idempotent): retried, then the result', () => {
	const retried: Array<{ name: string; faults: Fault[]; options?: Json; queries?: number }> = [
		{ name: 'connection dropped with no answer', faults: [{ route: 'query', type: 'drop' }], queries: 2 },
		{ name: 'connection dropped mid-response', faults: [{ route: 'query', type: 'dropMidBody' }], queries: 2 },
		{ name: 'response body cut short', faults: [{ route: 'query', type: 'truncate' }], queries: 2 },
		{
			name: 'response slower than the request timeout',
			faults: [{ route: 'query', type: 'delay', ms: 2500 }],
			options: { requestTimeout: 1 },
			queries: 2,
		},
		{ name: 'malformed JSON with HTTP 200', faults: [{ route: 'query', type: 'malformed' }], queries: 2 },
		{ name: 'HTTP 500 with a non-JSON body', faults: [{ route: 'query', type: 'status', status: 500, body: 'oops' }], queries: 2 },
		// Bursts hit whichever query is next in line, so only the totals are fixed.
		{ name: 'four 503 in a row (Retry-After: 0)', faults: [retryAfterZero(503, 4)] },
		{ name: 'a burst of 429 (Retry-After: 0)', faults: [retryAfterZero(429, 3)] },
	];

	it.each(retried)('$name', async ({ faults, options, queries }) => {
		const [faulted, other] = await seedTasks(sim, [SEED, SEED]);
		for (const fault of faults) sim.addFault(fault);
		const { output, error } = await withFastBackoff(async () => await waitForTwo([faulted, other], options));
		expect(error).toBeUndefined();
		const injected = faults.reduce((sum, fault) => sum + (fault.times ?? 1), 0);
		expect(sim.apiRequests('query').filter((request) => request.fault)).toHaveLength(injected);
		expect(sim.apiRequests('query')).toHaveLength(injected + 2);
		expect(queriesOf(faulted)[0].fault).toBe(faults[0].type);
		if (queries) expect(queriesOf(faulted)).toHaveLength(queries);
		for (const taskId of [faulted, other]) {
			expect(queriesOf(taskId).filter((request) => request.status === 200 && !request.fault)).toHaveLength(1);
		}
		expect(output[0]).toHaveLength(2);
		await expectImageItem(output[0][0], faulted, 0);
		await expectImageItem(output[0][1], other, 1);
		expect(sim.apiRequests('create')).toHaveLength(0);
	});

	it(`${RETRY.maxAttempts} failures in a row: the retries run out, the next poll round succeeds`, async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault(retryAfterZero(503, RETRY.maxAttempts));
		const { output, error } = await runKling(sim, {
			operation: 'waitForCompletion',
			taskId,
			options: { pollInterval: 1, maxWaitTime: 30 },
		});
		expect(error).toBeUndefined();
		expect(queriesOf(taskId).map((request) => request.status)).toEqual([503, 503, 503, 503, 503, 200]);
		// The last try of the first round and the next round are a poll interval apart.
		const [last, next] = queriesOf(taskId).slice(-2);
		expect(next.at - last.at).toBeGreaterThanOrEqual(950);
		await expectImageItem(output[0][0], taskId, 0);
	});

	it(`Get Task gives up after ${RETRY.maxAttempts} attempts with the provider's error`, async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault(retryAfterZero(503, 50));
		const { error } = await runKling(sim, { operation: 'getTask', taskId });
		expect(queriesOf(taskId)).toHaveLength(RETRY.maxAttempts);
		expect(errorMessage(error)).toMatch(
			new RegExp(`^CometAPI could not query task ${taskId}: Service Unavailable \\(HTTP 503, code 503, request ID [\\w-]+\\) \\[item 0\\]$`),
		);
	});

	it('waiting that outlasts Max Wait Time while the API keeps failing names the task and the last error', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault(retryAfterZero(503, 1000));
		const { error } = await runKling(sim, {
			operation: 'waitForCompletion',
			taskId,
			options: { pollInterval: 1, maxWaitTime: 1 },
		});
		expect(errorMessage(error)).toBe(`Task ${taskId} is not finished after waiting 1 s [item 0]`);
		expect((error as { description?: string }).description).toMatch(
			new RegExp(`The last query failed: CometAPI could not query task ${taskId}: Service Unavailable`),
		);
		expect(sim.apiRequests('create')).toHaveLength(0);
	});
});

describe('task query answers that are final', () => {
	it('HTTP 200 with a non-zero code fails that item at once; the other completes', async () => {
		const [faulted, other] = await seedTasks(sim, [SEED, SEED]);
		sim.addFault({ route: 'query', type: 'code', code: 1301, message: 'Trigger the content security policy' });
		const { output, error } = await waitForTwo([faulted, other]);
		expect(error).toBeUndefined();
		expect(queriesOf(faulted)).toHaveLength(1);
		const failed = errorJson(output[0][0]);
		expect(failed.error).toMatch(
			new RegExp(`^CometAPI could not query task ${faulted}: Trigger the content security policy \\(HTTP 200, code 1301, request ID [\\w-]+\\) \\[item 0\\]$`),
		);
		expect(failed.task_id).toBe(faulted);
		await expectImageItem(output[0][1], other, 1);
	});

	it.each([
		{ style: 'http' as const, status: 404 },
		{ style: 'code200' as const, status: 200 },
	])('task_not_exist ($style style) names the task, with a hint, and is not retried', async ({ style, status }) => {
		const styled = await startSim({ errorStyle: style });
		try {
			for (const operation of ['getTask', 'waitForCompletion']) {
				const { output, error } = await runKling(
					styled,
					{ operation, taskId: '={{ $json.task_id }}', options: { pollInterval: 1 } },
					{ inputItems: [{ json: { task_id: 'no-such-task' } }], continueOnFail: true },
				);
				expect(error).toBeUndefined();
				const failed = errorJson(output[0][0]);
				expect(failed.error).toMatch(
					new RegExp(`^CometAPI could not query task no-such-task: task_not_exist \\(HTTP ${status}, code 1203, request ID [\\w-]+\\) \\[item 0\\]$`),
				);
				expect(failed.description).toBe('The task ID is unknown, expired or belongs to another account.');
				expect(failed.task_id).toBe('no-such-task');
			}
			expect(styled.apiRequests('query')).toHaveLength(2);
		} finally {
			await styled.close();
		}
	});

	it('a task that fails with a reason: the error names task, reason and item; the other completes', async () => {
		const [failing, other] = await seedTasks(sim, [SEED_FAIL, SEED]);
		const { output, error } = await waitForTwo([failing, other]);
		expect(error).toBeUndefined();
		const failed = errorJson(output[0][0]);
		expect(failed.error).toBe(`Kling task ${failing} failed: ${SEED_FAIL_REASON} [item 0]`);
		expect(failed.task_id).toBe(failing);
		await expectImageItem(output[0][1], other, 1);
		expect(sim.imageRequests().every((request) => request.taskId === other)).toBe(true);
	});

	it('a task created by the node that fails while being polled: one create, the reason, the other item completes', async () => {
		const running = createTwo({}, {}, true);
		// Fail item 0's task while the node waits for its first poll round.
		while (createsOf('item 0').length === 0) await sleep(10);
		const taskId = createsOf('item 0')[0].taskId!;
		sim.failTask(taskId, 'Internal generation error');
		const { output, error } = await running;
		expect(error).toBeUndefined();
		expect(createsOf('item 0')).toHaveLength(1);
		expect(createsOf('item 1')).toHaveLength(1);
		expect(errorJson(output[0][0]).error).toBe(`Kling task ${taskId} failed: Internal generation error [item 0]`);
		await expectImageItem(output[0][1], createsOf('item 1')[0].taskId!, 1);
	});
});

describe('create and wait through query and download faults', () => {
	it('each task is created exactly once, whatever fails after the create', async () => {
		sim.addFault({ route: 'query', type: 'drop' });
		sim.addFault(retryAfterZero(503, 2));
		sim.addFault({ route: 'image', type: 'truncate' });
		sim.addFault({ route: 'image', type: 'status', status: 503, headers: { 'Retry-After': '0' } });
		const { output, error } = await createTwo({}, {}, true);
		expect(error).toBeUndefined();
		for (const [index, prompt] of ['item 0', 'item 1'].entries()) {
			expect(createsOf(prompt)).toHaveLength(1);
			await expectImageItem(output[0][index], createsOf(prompt)[0].taskId!, index);
		}
		expect(sim.apiRequests('query').filter((request) => request.fault)).toHaveLength(3);
		expect(sim.imageRequests().filter((request) => request.fault)).toHaveLength(2);
	});

	it('a download that cannot succeed is not paid for again: one create, an error naming the task', async () => {
		const running = createTwo({}, {}, true);
		// Expire item 0's images as soon as its task exists: the download then answers 404.
		while (createsOf('item 0').length === 0) await sleep(10);
		const taskId = createsOf('item 0')[0].taskId!;
		sim.expireImages({ taskId });
		const { output, error } = await running;
		expect(error).toBeUndefined();
		expect(createsOf('item 0')).toHaveLength(1);
		expect(createsOf('item 1')).toHaveLength(1);
		expect(errorJson(output[0][0])).toMatchObject({
			error: `Could not download image 0 of task ${taskId}: the image URL answered HTTP 404: it has probably expired [item 0]`,
			task_id: taskId,
		});
		await expectImageItem(output[0][1], createsOf('item 1')[0].taskId!, 1);
	});
});

describe('image download faults', () => {
	const retried: Array<{ name: string; fault: Fault; options?: Json }> = [
		{ name: 'connection dropped with no answer', fault: { route: 'image', type: 'drop' } },
		{ name: 'connection dropped mid-body', fault: { route: 'image', type: 'dropMidBody' } },
		{ name: 'truncated image body', fault: { route: 'image', type: 'truncate' } },
		{ name: 'truncated in the first bytes', fault: { route: 'image', type: 'truncate', bytes: 5 } },
		{ name: 'answer slower than the request timeout', fault: { route: 'image', type: 'delay', ms: 2500 }, options: { requestTimeout: 1 } },
		{ name: 'HTTP 503 (Retry-After: 0)', fault: { route: 'image', type: 'status', status: 503, headers: { 'Retry-After': '0' } } },
		{ name: 'HTTP 429 (Retry-After: 0)', fault: { route: 'image', type: 'status', status: 429, headers: { 'Retry-After': '0' } } },
	];

	it.each(retried)('$name: retried, then the exact image', async ({ fault, options }) => {
		const [faulted, other] = await seedTasks(sim, [SEED, SEED]);
		sim.addFault(fault);
		const { output, error } = await withFastBackoff(async () => await waitForTwo([faulted, other], options));
		expect(error).toBeUndefined();
		const hit = sim.imageRequests().find((request) => request.fault)!;
		expect(hit.fault).toBe(fault.type);
		expect(imageRequestsOf(hit.taskId!)).toHaveLength(2);
		const position = hit.taskId === faulted ? 0 : 1;
		await expectImageItem(output[0][position], hit.taskId!, position);
		await expectImageItem(output[0][1 - position], hit.taskId === faulted ? other : faulted, 1 - position);
		expect(sim.apiRequests('create')).toHaveLength(0);
	});

	const failing: Array<{ name: string; setup: (taskId: string) => void; options?: Json; reason: string; requests: number }> = [
		{
			name: 'image URL expired (404)',
			setup: (taskId) => sim.expireImages({ taskId, status: 404 }),
			reason: 'the image URL answered HTTP 404: it has probably expired',
			requests: 1,
		},
		{
			name: 'image URL expired (403)',
			setup: (taskId) => sim.expireImages({ taskId, status: 403 }),
			reason: 'the image URL answered HTTP 403: it has probably expired',
			requests: 1,
		},
		{
			name: 'image over the download size limit',
			setup: () => sim.addFault({ route: 'image', type: 'oversize', bytes: 2 * 1024 * 1024 }),
			options: { maxDownloadSizeMb: 1 },
			reason: 'the image is 2 MB, over the 1 MB download limit',
			requests: 1,
		},
		{
			name: 'non-image content type (text/html)',
			setup: () => sim.addFault({ route: 'image', type: 'contentType', contentType: 'text/html; charset=utf-8' }),
			reason: 'the server answered with "text/html", not an image',
			requests: 1,
		},
		{
			name: 'HTTP 200 with a JSON error body',
			setup: () => sim.addFault({ route: 'image', type: 'code', code: 403, message: 'denied' }),
			reason: 'the server answered with "application/json", not an image',
			requests: 1,
		},
		{
			name: 'image/png that is not an image',
			setup: () => sim.addFault({ route: 'image', type: 'malformed' }),
			reason: 'the body is not a valid image (declared as "image/png")',
			requests: 1,
		},
		{
			name: 'HTTP 503 on every attempt',
			setup: (taskId) => sim.expireImages({ taskId, status: 503 }),
			reason: 'the image server answered HTTP 503',
			requests: RETRY.maxAttempts,
		},
	];

	it.each(failing)('$name: a clear error naming task, image and item; the other item completes', async ({ setup, options, reason, requests }) => {
		const [faulted, other] = await seedTasks(sim, [SEED, SEED]);
		setup(faulted);
		const { output, error } = await withFastBackoff(async () => await waitForTwo([faulted, other], options));
		expect(error).toBeUndefined();
		const hitTask = sim.imageRequests().find((request) => request.fault || request.status !== 200)!.taskId!;
		const position = hitTask === faulted ? 0 : 1;
		expect(imageRequestsOf(hitTask)).toHaveLength(requests);
		const failed = errorJson(output[0][position]);
		expect(failed.error).toBe(`Could not download image 0 of task ${hitTask}: ${reason} [item ${position}]`);
		expect(failed.description).toContain(`Run "Get Task" with task ID ${hitTask}`);
		expect(failed.task_id).toBe(hitTask);
		await expectImageItem(output[0][1 - position], hitTask === faulted ? other : faulted, 1 - position);
		expect(sim.apiRequests('create')).toHaveLength(0);
	});

	it('Get Task with Download Images reports an expired URL the same way', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.expireImages({ taskId });
		const { error } = await runKling(sim, { operation: 'getTask', taskId, downloadImages: true });
		expect(errorMessage(error)).toBe(
			`Could not download image 0 of task ${taskId}: the image URL answered HTTP 404: it has probably expired [item 0]`,
		);
		expect(imageRequestsOf(taskId)).toHaveLength(1);
	});

	it('a generic binary content type is accepted when the bytes are an image', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'image', type: 'contentType', contentType: 'application/octet-stream' });
		const { output, error } = await runKling(sim, { operation: 'getTask', taskId, downloadImages: true });
		expect(error).toBeUndefined();
		expect(output[0][0].binary!.data.mimeType).toBe('image/png');
		await expectImageItem(output[0][0], taskId, 0);
	});
});

describe('download faults the simulator cannot script (a local API + image host)', () => {
	let server: Server;
	let base = '';
	let mode: 'chunked' | 'stallOnce' = 'chunked';
	const imageRequests: string[] = [];
	const png = createReferencePng(300, 300);

	beforeAll(async () => {
		server = createServer((request, response) => {
			if (request.url?.startsWith('/kling/')) {
				const data = {
					task_id: 'local-1',
					task_status: 'succeed',
					task_result: { images: [{ index: 0, url: `${base}/image.png` }] },
				};
				response.writeHead(200, { 'content-type': 'application/json' });
				response.end(JSON.stringify({ code: 0, message: 'SUCCEED', data }));
				return;
			}
			imageRequests.push(String(request.headers.authorization ?? 'no authorization'));
			if (mode === 'stallOnce' && imageRequests.length === 1) {
				// Headers and the first bytes, then silence: the socket stays open.
				response.writeHead(200, { 'content-type': 'image/png', 'content-length': String(png.length) });
				response.write(png.subarray(0, 100));
				return;
			}
			if (mode === 'stallOnce') {
				response.writeHead(200, { 'content-type': 'image/png', 'content-length': String(png.length) });
				response.end(png);
				return;
			}
			// Streamed in chunks with no Content-Length, far past the limit.
			response.writeHead(200, { 'content-type': 'image/png', 'transfer-encoding': 'chunked' });
			response.write(png);
			const chunk = Buffer.alloc(256 * 1024);
			let sent = 0;
			const pump = () => {
				while (sent < 12 && !response.destroyed) {
					sent++;
					if (!response.write(chunk)) return void response.once('drain', pump);
				}
				response.end();
			};
			pump();
		});
		await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
		base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	});
	beforeEach(() => {
		imageRequests.length = 0;
	});
	afterAll(async () => {
		server.closeAllConnections();
		await new Promise((resolve) => server.close(resolve));
	});

	const getTask = async (options: Json) =>
		await runKling(
			sim,
			{ operation: 'getTask', taskId: 'local-1', downloadImages: true, options },
			{ credentials: { apiKey: API_KEY, baseUrl: base } },
		);

	it('no Content-Length: stops reading once the stream outgrows the size limit, and does not retry', async () => {
		mode = 'chunked';
		const { error } = await getTask({ maxDownloadSizeMb: 1 });
		expect(errorMessage(error)).toBe(
			'Could not download image 0 of task local-1: the image is larger than the 1 MB download limit [item 0]',
		);
		// The image host here is the API host itself: downloads still carry no key.
		expect(imageRequests).toEqual(['no authorization']);
	});

	it('a body that stalls half-way: the request timeout ends it, and the retry gets the image', async () => {
		mode = 'stallOnce';
		const { output, error } = await getTask({ requestTimeout: 1 });
		expect(error).toBeUndefined();
		expect(imageRequests).toHaveLength(2);
		expect(await binaryToBuffer(output[0][0].binary!.data)).toEqual(png);
	});
});
