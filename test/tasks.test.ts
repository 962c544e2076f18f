import type { Simulator } from '../simulator';
import { binaryToBuffer } from './harness';
import { createParams, errorMessage, FAST, runKling, startSim } from './support/kling';
import { sleep } from './support/wait';

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim();
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

/** Creates tasks without waiting and returns the node's output items (each with task_id). */
async function createTasks(count: number, overrides = {}) {
	const { output, error } = await runKling(sim, createParams({ waitForCompletion: false, ...overrides }), {
		inputItems: Array.from({ length: count }, (_, index) => ({ json: { index } })),
	});
	expect(error).toBeUndefined();
	return output[0];
}

async function untilStatus(taskId: string, status: string) {
	for (let tries = 0; tries < 100 && sim.taskStatus(taskId) !== status; tries++) {
		await sleep(20);
	}
}

describe('Get Task', () => {
	it('reads the task id from the incoming item by default and outputs the task normalised', async () => {
		const [created] = await createTasks(1, { n: 2, additionalFields: { watermark: true, externalTaskId: 'ext-7' } });
		const taskId = created.json.task_id as string;
		await untilStatus(taskId, 'succeed');
		const { output, error } = await runKling(sim, { operation: 'getTask' }, { inputItems: [{ json: created.json }] });
		expect(error).toBeUndefined();
		const task = sim.tasks.get(taskId)!;
		expect(output[0]).toHaveLength(1);
		expect(output[0][0].json).toEqual({
			task_id: taskId,
			status: 'succeed',
			status_message: null,
			external_task_id: 'ext-7',
			result_type: 'single',
			images: task.images.map((image) => ({ index: image.index, url: image.url, watermark_url: image.watermark_url })),
			cost: '2',
			created_at: new Date(task.createdAt).toISOString(),
			updated_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
		});
		expect(output[0][0].binary).toBeUndefined();
		expect(sim.apiRequests('query').map((request) => request.path)).toEqual([
			`/kling/v1/images/omni-image/${taskId}`,
		]);
		expect(sim.imageRequests()).toHaveLength(0);
	});

	it('downloads the images of a succeeded task when asked', async () => {
		const [created] = await createTasks(1, { n: 2 });
		const taskId = created.json.task_id as string;
		await untilStatus(taskId, 'succeed');
		const { output } = await runKling(sim, { operation: 'getTask', taskId, downloadImages: true });
		expect(output[0]).toHaveLength(2);
		const task = sim.tasks.get(taskId)!;
		expect(await binaryToBuffer(output[0][1].binary!.data)).toEqual(sim.expectedImageBytes(task.images[1].url));
	});

	it('returns an unfinished task as it is, without downloading', async () => {
		const [created] = await createTasks(1);
		const { output } = await runKling(sim, { operation: 'getTask', taskId: created.json.task_id as string, downloadImages: true });
		expect(['submitted', 'processing']).toContain(output[0][0].json.status);
		expect(sim.imageRequests()).toHaveLength(0);
	});

	it('shows the failure reason of a failed task as data, not as an error', async () => {
		const [created] = await createTasks(1);
		sim.failTask(created.json.task_id as string, 'Image rejected by moderation');
		const { output, error } = await runKling(sim, { operation: 'getTask', taskId: created.json.task_id as string });
		expect(error).toBeUndefined();
		expect(output[0][0].json).toMatchObject({ status: 'failed', status_message: 'Image rejected by moderation' });
	});

	it('explains an unknown task id, with the provider message', async () => {
		const { error } = await runKling(sim, { operation: 'getTask', taskId: 'no-such-task' });
		expect(errorMessage(error)).toMatch(/task_not_exist/);
		expect((error as { description?: string }).description).toMatch(/unknown, expired or belongs to another account/);
	});
});

describe('Wait for Completion', () => {
	it('waits for tasks made earlier, keeps pairing, and never creates a task', async () => {
		const created = await createTasks(3);
		const creates = sim.apiRequests('create').length;
		const { output, error } = await runKling(sim, { operation: 'waitForCompletion', options: FAST }, { inputItems: created });
		expect(error).toBeUndefined();
		expect(sim.apiRequests('create')).toHaveLength(creates);
		expect(output[0].map((item) => [item.pairedItem, item.json.task_id])).toEqual(
			created.map((item, index) => [{ item: index }, item.json.task_id]),
		);
		for (const item of output[0]) {
			const task = sim.tasks.get(item.json.task_id as string)!;
			expect(await binaryToBuffer(item.binary!.data)).toEqual(sim.expectedImageBytes(task.images[0].url));
		}
	});

	it('polls a task that already finished once and does not sleep first', async () => {
		const [created] = await createTasks(1);
		await untilStatus(created.json.task_id as string, 'succeed');
		const started = Date.now();
		const { error } = await runKling(sim, { operation: 'waitForCompletion', options: { pollInterval: 30 } }, { inputItems: [created] });
		expect(error).toBeUndefined();
		expect(sim.apiRequests('query')).toHaveLength(1);
		expect(Date.now() - started).toBeLessThan(10_000);
	});

	it('fails a failed task with the provider reason', async () => {
		const [created] = await createTasks(1);
		sim.failTask(created.json.task_id as string, 'Face detected in reference');
		const { error } = await runKling(sim, { operation: 'waitForCompletion', options: FAST }, { inputItems: [created] });
		expect(errorMessage(error)).toBe(`Kling task ${created.json.task_id} failed: Face detected in reference [item 0]`);
	});

	it('gives up after the maximum wait with an error that names the task and how to pick it up', async () => {
		const slow = await startSim({ taskDurationMs: 60_000 });
		try {
			const { output } = await runKling(slow, createParams({ waitForCompletion: false }));
			const taskId = output[0][0].json.task_id as string;
			const { error } = await runKling(slow, { operation: 'waitForCompletion', options: { pollInterval: 1, maxWaitTime: 2 } }, { inputItems: output[0] });
			expect(errorMessage(error)).toMatch(new RegExp(`Task ${taskId} is still "(submitted|processing)" after waiting 2 s`));
			expect((error as { description?: string }).description).toMatch(new RegExp(`Wait for Completion.*task ID ${taskId}`));
			expect(slow.apiRequests('create')).toHaveLength(1);
		} finally {
			await slow.close();
		}
	});

	it('with Continue On Fail, outputs an error item for the failed task and the images of the others', async () => {
		const created = await createTasks(3);
		sim.failTask(created[1].json.task_id as string, 'Policy');
		const { output, error } = await runKling(
			sim,
			{ operation: 'waitForCompletion', options: FAST },
			{ inputItems: created, continueOnFail: true },
		);
		expect(error).toBeUndefined();
		expect(output[0]).toHaveLength(3);
		expect(output[0][1].json).toMatchObject({ error: expect.stringMatching(/failed: Policy/), task_id: created[1].json.task_id });
		expect(output[0][1].pairedItem).toEqual({ item: 1 });
		expect(output[0][0].binary?.data).toBeDefined();
		expect(output[0][2].binary?.data).toBeDefined();
	});

	it('without Continue On Fail, the error lists the tasks of the other items so nothing paid for is lost', async () => {
		const created = await createTasks(2);
		sim.failTask(created[0].json.task_id as string, 'Policy');
		const { error } = await runKling(sim, { operation: 'waitForCompletion', options: FAST }, { inputItems: created });
		expect(errorMessage(error)).toMatch(/failed: Policy \[item 0\]/);
		expect((error as { description?: string }).description).toContain(`item 1: task ${created[1].json.task_id}`);
	});

	it('names the other items\' tasks that may still finish when the run stops at a failure', async () => {
		const slow = await startSim({ taskDurationMs: 60_000 });
		try {
			const { output } = await runKling(slow, createParams({ waitForCompletion: false }), {
				inputItems: [{ json: {} }, { json: {} }],
			});
			slow.failTask(output[0][0].json.task_id as string, 'Policy');
			const { error } = await runKling(slow, { operation: 'waitForCompletion', options: FAST }, { inputItems: output[0] });
			expect(errorMessage(error)).toMatch(/failed: Policy \[item 0\]/);
			expect((error as { description?: string }).description).toContain(
				`item 1: task ${output[0][1].json.task_id} (may still finish)`,
			);
		} finally {
			await slow.close();
		}
	});

	it('stops promptly when the workflow is stopped', async () => {
		const slow = await startSim({ taskDurationMs: 60_000 });
		try {
			const { output } = await runKling(slow, createParams({ waitForCompletion: false }));
			const controller = new AbortController();
			const started = Date.now();
			const stopping = sleep(500).then(() => controller.abort());
			const { error } = await runKling(slow, { operation: 'waitForCompletion', options: { pollInterval: 20 } }, { inputItems: output[0], abortSignal: controller.signal });
			await stopping;
			expect(error).toBeDefined();
			expect(Date.now() - started).toBeLessThan(3_000);
		} finally {
			await slow.close();
		}
	});
});

describe('Answers the contract allows that need care', () => {
	it('keeps polling a task it just created when the API does not know it yet', async () => {
		sim.addFault({ route: 'query', type: 'status', status: 404, body: { code: 1203, message: 'task_not_exist' } });
		const { output, error } = await runKling(sim, createParams());
		expect(error).toBeUndefined();
		expect(output[0][0].binary?.data).toBeDefined();
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect(sim.apiRequests('query').length).toBeGreaterThanOrEqual(2);
	});

	it('fails at once when a task id given to Wait for Completion does not exist', async () => {
		const { error } = await runKling(sim, { operation: 'waitForCompletion', taskId: 'no-such-task', options: FAST });
		expect(errorMessage(error)).toMatch(/task_not_exist/);
		expect(sim.apiRequests('query')).toHaveLength(1);
	});

	it('reports a create answer without a task id as a task that may exist, and does not resend it', async () => {
		sim.addFault({ route: 'create', type: 'status', status: 200, body: { code: 0, message: 'SUCCEED', data: {} } });
		const { error } = await runKling(sim, createParams({ additionalFields: { externalTaskId: 'ext-42' } }));
		expect(errorMessage(error)).toBe(
			'CometAPI accepted the create request but sent no task ID: the task may have been created and charged [item 0]',
		);
		expect((error as { description?: string }).description).toContain('ext-42');
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect(sim.apiRequests('query')).toHaveLength(0);
	});
});
