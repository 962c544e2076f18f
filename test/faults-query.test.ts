/**
 * Faults of the task query (idempotent, so retried) and query answers that are final: each ends in the
 * result or a clear error naming the task and item; a task is never created again; with "Continue On
 * Fail" the other items still complete.
 *
 * Items run with "Max Concurrent Requests" 1, so the first queued fault always hits item 0.
 */
import { DEFAULT_RETRY_POLICY as RETRY } from '../nodes/shared/request/retry';
import type { Fault, Simulator } from '../simulator';
import { errorJson, type Json, retryAfterZero, twoItemRuns } from './support/fault-runs';
import { errorMessage, runKling, startSim, withFastBackoff } from './support/kling';
import { SEED, SEED_FAIL, SEED_FAIL_REASON, seededTaskPlan, seedTasks } from './support/simulator-http';
import { sleep } from './support/wait';

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim({ taskPlan: seededTaskPlan });
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

const { createTwo, waitForTwo, createsOf, queriesOf, expectImageItem } = twoItemRuns(() => sim);

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
