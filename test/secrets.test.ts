/**
 * Secrets and limits: the API key never shows up in output, errors or logs, and reaches only the
 * API host; stopping a workflow ends the node within about a second wherever it waits.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import { inspect } from 'node:util';

import type * as Core from 'n8n-core';

import type * as Internals from './harness/n8n-internals';
import type * as Support from './support/kling';
import type { INodeParameters } from 'n8n-workflow';

import type { Fault, Simulator } from '../simulator';
import { SEED, SEED_FAIL, seededTaskPlan, seedTasks } from './support/simulator-http';
import { sleep } from './support/wait';

// n8n builds its logger once, from the environment: log everything, so nothing escapes the scan.
// Set before the harness (and so n8n-core) is loaded.
process.env.N8N_LOG_LEVEL = 'debug';
const { Container, Logger } = require('./harness/n8n-internals') as typeof Internals;
const { ErrorReporter } = require('n8n-core') as typeof Core;
const { API_KEY, createParams, errorMessage, everythingVisible, runKling, startSim, withFastBackoff } =
	require('./support/kling') as typeof Support;

const WRONG_KEY = 'sk-wrong-0a1b2c3d4e5f60718293';

/** Everything n8n's logger was asked to log, and everything written to the console. */
const logged: string[] = [];
const consoleMethods = ['log', 'info', 'warn', 'error', 'debug'] as const;

let sim: Simulator;
beforeAll(async () => {
	jest.spyOn(Logger.prototype as unknown as { log: (...args: unknown[]) => void }, 'log').mockImplementation(function (...args: unknown[]) {
		logged.push(inspect(args, { depth: 10 }));
	});
	for (const method of consoleMethods) {
		jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
			logged.push(inspect(args, { depth: 10 }));
		});
	}
	sim = await startSim({ taskPlan: seededTaskPlan });
});
afterEach(() => sim.reset());
afterAll(async () => {
	jest.restoreAllMocks();
	await sim.close();
});

type RunResult = Awaited<ReturnType<typeof runKling>>;

/** Output JSON, error message/description/stack/context, and everything reachable from the error. */
function visibleAndReachable(result: RunResult): string {
	return `${everythingVisible(result)}\n${inspect(result.error, { depth: 12, showHidden: true })}`;
}

/**
 * What n8n does with a node that threw: its error reporter logs the message, stack and every cause.
 * (The harness runs the node alone, so this step is replayed here.)
 */
function reportLikeN8n(result: RunResult): void {
	if (result.error instanceof Error) Container.get(ErrorReporter).error(result.error, { executionId: 'harness' });
}

/** Fails when a key appears anywhere a user, n8n's execution log or n8n's logger could see it. */
function expectNoKey(result: RunResult, keys: string[] = [API_KEY]): void {
	reportLikeN8n(result);
	const text = `${visibleAndReachable(result)}\n${logged.join('\n')}`;
	for (const key of keys) {
		expect(text).not.toContain(key);
		// Also no recognisable part of it (e.g. a truncated header in a message).
		expect(text).not.toContain(key.slice(3, 19));
	}
}

/** The key went only to the API host, on every request; the image host never saw an Authorization header. */
function expectKeyOnlyOnApiHost(key = API_KEY): void {
	for (const request of sim.apiRequests()) {
		expect(request.headers.authorization).toBe(`Bearer ${key}`);
	}
	for (const request of sim.imageRequests()) {
		expect(request.headers.authorization).toBeUndefined();
		expect(request.rejectedAuthorization).toBeUndefined();
		expect(JSON.stringify(request.headers)).not.toContain(key);
		expect(request.path).not.toContain(key);
	}
}


const waitFor = (taskIds: string[], options: INodeParameters = {}) =>
	[
		{ operation: 'waitForCompletion', taskId: '={{ $json.task_id }}', options: { pollInterval: 1, maxConcurrentRequests: 1, ...options } },
		{ inputItems: taskIds.map((task_id) => ({ json: { task_id } })) },
	] as const;

describe('the API key never appears in output, errors or logs', () => {
	it('the scan sees what n8n logs (so an empty log cannot pass it by accident)', async () => {
		logged.length = 0;
		sim.addFault({ route: 'create', type: 'drop' });
		const result = await runKling(sim, createParams({ waitForCompletion: false }));
		reportLikeN8n(result);
		expect(logged.join('\n')).toContain('The create request got no usable answer');
	});

	it('a successful run with downloads', async () => {
		const result = await runKling(sim, createParams({ n: 2 }), { inputItems: [{ json: {} }, { json: {} }] });
		expect(result.error).toBeUndefined();
		expect(result.output[0]).toHaveLength(4);
		expectNoKey(result);
		expectKeyOnlyOnApiHost();
	});

	it('a rejected key: not echoed back in the error', async () => {
		for (const continueOnFail of [false, true]) {
			const result = await runKling(sim, createParams(), {
				credentials: { apiKey: WRONG_KEY, baseUrl: sim.apiUrl },
				continueOnFail,
			});
			expect(`${errorMessage(result.error)}${JSON.stringify(result.output)}`).toMatch(/Invalid API key/);
			expectNoKey(result, [WRONG_KEY, API_KEY]);
		}
		expectKeyOnlyOnApiHost(WRONG_KEY);
	});

	const createFaults: Array<{ name: string; fault: Fault; options?: INodeParameters }> = [
		{ name: 'create connection dropped', fault: { route: 'create', type: 'drop' } },
		{ name: 'create cut mid-response', fault: { route: 'create', type: 'dropMidBody' } },
		{ name: 'create timed out', fault: { route: 'create', type: 'delay', ms: 2000 }, options: { requestTimeout: 1 } },
		{ name: 'create malformed JSON', fault: { route: 'create', type: 'malformed' } },
		{ name: 'create HTTP 500', fault: { route: 'create', type: 'status', status: 500 } },
		{ name: 'create rate-limited for good', fault: { route: 'create', type: 'status', status: 429, headers: { 'Retry-After': '0' }, times: 20 } },
		{ name: 'create code 1102 (balance)', fault: { route: 'create', type: 'code', code: 1102, message: 'Account balance not enough' } },
	];

	it.each(createFaults)('$name', async ({ fault, options }) => {
		sim.addFault(fault);
		for (const continueOnFail of [false, true]) {
			const result = await runKling(
				sim,
				createParams({ waitForCompletion: false, additionalFields: { generateExternalTaskId: true }, options: { ...options } }),
				{ continueOnFail },
			);
			expect(`${errorMessage(result.error)}${JSON.stringify(result.output)}`).not.toBe('');
			expectNoKey(result);
			sim.clearFaults();
		}
		expectKeyOnlyOnApiHost();
	});

	const laterFaults: Array<{ name: string; fault?: Fault; expire?: number; options?: INodeParameters }> = [
		{ name: 'query connection dropped', fault: { route: 'query', type: 'drop' } },
		{ name: 'query body cut short', fault: { route: 'query', type: 'truncate' } },
		{ name: 'query 503 for good', fault: { route: 'query', type: 'status', status: 503, headers: { 'Retry-After': '0' }, times: 20 }, options: { maxWaitTime: 1 } },
		{ name: 'query non-zero code', fault: { route: 'query', type: 'code', code: 1203, message: 'task_not_exist' } },
		{ name: 'image dropped mid-body', fault: { route: 'image', type: 'dropMidBody' } },
		{ name: 'image timed out', fault: { route: 'image', type: 'delay', ms: 2000 }, options: { requestTimeout: 1 } },
		{ name: 'image not an image', fault: { route: 'image', type: 'contentType', contentType: 'text/html' } },
		{ name: 'image over the size limit', fault: { route: 'image', type: 'oversize', bytes: 2 * 1024 * 1024 }, options: { maxDownloadSizeMb: 1 } },
		{ name: 'image URL expired', expire: 403 },
	];

	it.each(laterFaults)('$name', async ({ fault, expire, options }) => {
		for (const continueOnFail of [false, true]) {
			const taskIds = await seedTasks(sim, [SEED, SEED]);
			if (fault) sim.addFault(fault);
			if (expire) sim.expireImages({ taskId: taskIds[0], status: expire });
			const [parameters, runOptions] = waitFor(taskIds, options);
			const result = await withFastBackoff(async () => await runKling(sim, parameters, { ...runOptions, continueOnFail }));
			expectNoKey(result);
			expectKeyOnlyOnApiHost();
			sim.reset();
		}
	});

	it('task_not_exist, a failed task, and a validation error', async () => {
		const notExist = await runKling(sim, { operation: 'getTask', taskId: 'no-such-task' });
		expect(errorMessage(notExist.error)).toMatch(/task_not_exist/);
		expectNoKey(notExist);
		const [failedTask] = await seedTasks(sim, [SEED_FAIL]);
		const failed = await runKling(sim, ...waitFor([failedTask]));
		expect(errorMessage(failed.error)).toBe(`Kling task ${failedTask} failed: Prompt violates content policy [item 0]`);
		expectNoKey(failed);
		const invalid = await runKling(sim, createParams({ prompt: '' }));
		expect(errorMessage(invalid.error)).toBe('Prompt is empty [item 0]');
		expectNoKey(invalid);
	});

	it('an unreachable API', async () => {
		const result = await withFastBackoff(
			async () =>
				await runKling(sim, { operation: 'getTask', taskId: 'x' }, {
					credentials: { apiKey: API_KEY, baseUrl: 'http://127.0.0.1:9' },
				}),
		);
		expect(errorMessage(result.error)).toMatch(/^Could not reach CometAPI at http:\/\/127\.0\.0\.1:9 to query task x: connection failed/);
		expectNoKey(result);
	});
});

describe('stopping the workflow ends the node within about a second', () => {
	/** Runs the node, stops it once `ready()` says it is waiting, and measures how long it took to end. */
	async function stopWhile(
		parameters: Parameters<typeof runKling>[1],
		runOptions: Parameters<typeof runKling>[2],
		ready: () => boolean,
	): Promise<{ result: RunResult; endedAfterMs: number }> {
		const controller = new AbortController();
		const running = runKling(sim, parameters, { ...runOptions, abortSignal: controller.signal });
		const deadline = Date.now() + 10_000;
		while (!ready()) {
			if (Date.now() > deadline) throw new Error('the node never reached the waiting state');
			await sleep(20);
		}
		await sleep(200);
		const stoppedAt = Date.now();
		controller.abort();
		const result = await running;
		return { result, endedAfterMs: Date.now() - stoppedAt };
	}

	it('while waiting between poll rounds: the error names the task to pick up later', async () => {
		const { result, endedAfterMs } = await stopWhile(
			createParams({ options: { pollInterval: 30, maxWaitTime: 600 } }),
			{},
			() => sim.apiRequests('create').length === 1,
		);
		expect(endedAfterMs).toBeLessThan(3000);
		const taskId = sim.apiRequests('create')[0].taskId!;
		expect(errorMessage(result.error)).toBe(`Stopped waiting for task ${taskId} [item 0]`);
		expect(sim.apiRequests('query')).toHaveLength(0);
		expectNoKey(result);
	});

	it('while honouring a long Retry-After on a query', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'query', type: 'status', status: 503, headers: { 'Retry-After': '60' } });
		const [parameters, runOptions] = waitFor([taskId]);
		const { result, endedAfterMs } = await stopWhile(parameters, runOptions, () => sim.apiRequests('query').length === 1);
		expect(endedAfterMs).toBeLessThan(3000);
		expect(errorMessage(result.error)).toMatch(new RegExp(`${taskId}.*\\[item 0\\]`));
		expect(sim.apiRequests('query')).toHaveLength(1);
	});

	it('while every request waits out a 429 (Retry-After) before creating', async () => {
		sim.addFault({ route: 'create', type: 'status', status: 429, headers: { 'Retry-After': '60' } });
		const { result, endedAfterMs } = await stopWhile(createParams(), {}, () => sim.apiRequests('create').length === 1);
		expect(endedAfterMs).toBeLessThan(3000);
		expect(errorMessage(result.error)).toBe('The execution was stopped before CometAPI could create the image task [item 0]');
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect(sim.tasks.size).toBe(0);
	});

	it('while a create request is in flight: the error says the task may exist', async () => {
		sim.addFault({ route: 'create', type: 'delay', ms: 30_000 });
		const { result, endedAfterMs } = await stopWhile(
			createParams({ additionalFields: { generateExternalTaskId: true } }),
			{},
			() => sim.apiRequests('create').length === 1,
		);
		expect(endedAfterMs).toBeLessThan(3000);
		expect(errorMessage(result.error)).toBe(
			'The create request got no usable answer (the execution was stopped): the task may have been created and charged [item 0]',
		);
		const externalId = sim.apiRequests('create')[0].body.external_task_id as string;
		expect((result.error as { description?: string }).description).toContain(externalId);
	});

	it('while a query gets no answer', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'query', type: 'delay', ms: 30_000 });
		const [parameters, runOptions] = waitFor([taskId], { requestTimeout: 60 });
		const { result, endedAfterMs } = await stopWhile(parameters, runOptions, () => sim.apiRequests('query').length === 1);
		expect(endedAfterMs).toBeLessThan(3000);
		expect(errorMessage(result.error)).toMatch(new RegExp(`${taskId}.*\\[item 0\\]`));
	});

	it('while an image download gets no answer', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'image', type: 'delay', ms: 30_000 });
		const [parameters, runOptions] = waitFor([taskId], { requestTimeout: 60 });
		const { result, endedAfterMs } = await stopWhile(parameters, runOptions, () => sim.imageRequests().length === 1);
		expect(endedAfterMs).toBeLessThan(3000);
		expect(errorMessage(result.error)).toBe(`Could not download image 0 of task ${taskId}: the execution was stopped [item 0]`);
	});
});
