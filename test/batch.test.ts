/**
 * Batch behaviour: many items in one run. No performance assertions (shared machines are noisy):
 * the checks are on the order and spacing of what reached the simulator, which the node controls
 * (spacing only as lower bounds the node must keep, e.g. Retry-After). Wall times, CPU and memory
 * are measured by `npm run bench` (bench/README.md) instead.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

import type { INodeExecutionData } from 'n8n-workflow';

import type { RecordedRequest, Simulator, TaskRecord } from '../simulator';
import { binaryToBuffer } from './harness';
import { getBinarySetup } from './harness/binary';
import { createParams, runKling, startSim } from './support/kling';
import { sleep } from './support/wait';

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim({
		// Per-item behaviour from the prompt: "slow ..." takes longer, "fail ..." fails, "big ..." is large.
		taskPlan: (body: { prompt: string }) => {
			if (body.prompt.startsWith('slow')) return { durationMs: 2_500 };
			if (body.prompt.startsWith('fail')) return { outcome: 'failed', failReason: 'Simulated content rejection' };
			if (body.prompt.startsWith('big')) return { imageSizeBytes: 8 * 1024 * 1024 };
			return undefined;
		},
	});
});
afterEach(() => {
	sim.reset();
	jest.restoreAllMocks();
});
afterAll(async () => await sim.close());

/** Input items carrying one prompt each; the node reads it with an expression. */
function promptItems(prompts: string[]): INodeExecutionData[] {
	return prompts.map((prompt) => ({ json: { prompt } }));
}

function batchParams(options: Record<string, unknown> = {}, overrides: Record<string, unknown> = {}) {
	return createParams({ prompt: '={{ $json.prompt }}', options: { pollInterval: 1, maxWaitTime: 30, ...options }, ...overrides });
}

function byArrival(requests: RecordedRequest[]): RecordedRequest[] {
	return [...requests].sort((a, b) => a.at - b.at);
}

/** The task the simulator created for a prompt (each prompt is unique in these tests). */
function taskFor(prompt: string): TaskRecord {
	const tasks = [...sim.tasks.values()].filter((task) => task.body.prompt === prompt);
	expect(tasks).toHaveLength(1);
	return tasks[0];
}

/**
 * The most requests of one route that were certainly in flight together. Every request of the
 * route is held `delayMs` by the simulator, so one that arrived less than `delayMs` before another
 * had not been answered yet when the other arrived.
 */
function maxCertainlyInFlight(requests: RecordedRequest[], delayMs: number): number {
	const times = requests.map((request) => request.at).sort((a, b) => a - b);
	let max = 0;
	times.forEach((at, i) => {
		const overlapping = times.slice(0, i).filter((earlier) => at - earlier < delayMs - 5).length;
		max = Math.max(max, overlapping + 1);
	});
	return max;
}

describe('Batch: create all, poll all together, download each as it succeeds', () => {
	it('creates every task before the first poll, polls them in rounds, keeps input order and pairing', async () => {
		// Items 0 and 1 finish last, so output order cannot just follow completion order.
		const prompts = ['slow 0', 'slow 1', ...Array.from({ length: 10 }, (_, i) => `fast ${i + 2}`)];
		const { output, error } = await runKling(sim, batchParams(), { inputItems: promptItems(prompts) });
		expect(error).toBeUndefined();

		const creates = sim.apiRequests('create');
		const queries = byArrival(sim.apiRequests('query'));
		// Every item's task is created exactly once, and all of them before the first status query.
		expect(creates.map((request) => request.body.prompt).sort()).toEqual([...prompts].sort());
		expect(creates.every((request) => request.afterCreate)).toBe(true);
		const lastCreateAt = Math.max(...creates.map((request) => request.at));
		expect(queries[0].at).toBeGreaterThanOrEqual(lastCreateAt);

		// The first round asks about every task before any task is asked about twice (one round for
		// all, not one polling loop per item).
		const firstRound = queries.slice(0, prompts.length);
		expect(new Set(firstRound.map((query) => query.taskId)).size).toBe(prompts.length);

		for (const prompt of prompts) {
			const task = taskFor(prompt);
			const own = queries.filter((query) => query.taskId === task.id);
			// At most ceil(T / interval) + 1 polls, and nothing after the answer that said "done".
			expect(own.length).toBeLessThanOrEqual(Math.ceil(task.durationMs / 1000) + 1);
			expect(own.filter((query) => query.at >= task.createdAt + task.durationMs).length).toBeLessThanOrEqual(1);
			// Each image is downloaded once.
			expect(sim.imageRequests().filter((request) => request.taskId === task.id)).toHaveLength(1);
		}

		// The fast tasks' images were fetched while the slow tasks were still being polled.
		const lastSlowQueryAt = Math.max(
			...queries.filter((query) => query.taskId === taskFor('slow 0').id || query.taskId === taskFor('slow 1').id).map((q) => q.at),
		);
		const fastImageTimes = prompts.slice(2).map((prompt) => sim.imageRequests().find((request) => request.taskId === taskFor(prompt).id)!.at);
		expect(Math.max(...fastImageTimes)).toBeLessThan(lastSlowQueryAt);

		// One output item per input item, in input order, paired with it and carrying its own task's image.
		const items = output[0];
		expect(items).toHaveLength(prompts.length);
		for (const [index, item] of items.entries()) {
			const task = taskFor(prompts[index]);
			expect(item.pairedItem).toEqual({ item: index });
			expect(item.json.task_id).toBe(task.id);
			expect(await binaryToBuffer(item.binary!.data)).toEqual(sim.expectedImageBytes(task.images[0].url));
		}
	});

	it('Wait for Completion polls all given tasks together at once, in input order', async () => {
		const prompts = ['fast a', 'fast b', 'fast c', 'fast d'];
		const created = await runKling(sim, batchParams({}, { waitForCompletion: false }), { inputItems: promptItems(prompts) });
		expect(created.error).toBeUndefined();
		const taskItems = created.output[0].map((item) => ({ json: { task_id: item.json.task_id } }));
		await sleep(400); // the tasks (300 ms) are done

		// A poll interval far longer than the run may take: it finishes only if the first round is at once.
		const before = Date.now();
		const { output, error } = await runKling(
			sim,
			{ operation: 'waitForCompletion', options: { pollInterval: 30, maxWaitTime: 60 } },
			{ inputItems: taskItems },
		);
		expect(error).toBeUndefined();
		expect(Date.now() - before).toBeLessThan(15_000);
		const queries = sim.apiRequests('query');
		expect(queries.map((query) => query.taskId).sort()).toEqual(taskItems.map((item) => item.json.task_id).sort());
		expect(sim.apiRequests('create')).toHaveLength(4);
		expect(output[0].map((item) => item.json.task_id)).toEqual(taskItems.map((item) => item.json.task_id));
		expect(output[0].map((item) => item.pairedItem)).toEqual([0, 1, 2, 3].map((item) => ({ item })));
		expect(output[0].every((item) => item.binary?.data !== undefined)).toBe(true);
	});

	it('never has more than "Max Concurrent Requests" API requests, or image downloads, in flight', async () => {
		const delayMs = 300;
		const count = 7;
		for (const route of ['create', 'query', 'image'] as const) {
			sim.addFault({ route, type: 'delay', ms: delayMs, times: count });
		}
		const prompts = Array.from({ length: count }, (_, i) => `fast ${i}`);
		const { output, error } = await runKling(sim, batchParams({ maxConcurrentRequests: 3 }), {
			inputItems: promptItems(prompts),
		});
		expect(error).toBeUndefined();
		expect(output[0]).toHaveLength(count);

		for (const requests of [sim.apiRequests('create'), sim.apiRequests('query'), sim.imageRequests()]) {
			expect(requests).toHaveLength(count);
			expect(requests.every((request) => request.fault === 'delay')).toBe(true);
			// The limit is used (three at once) and never exceeded.
			expect(maxCertainlyInFlight(requests, delayMs)).toBe(3);
		}
	});
});

describe('Batch: one shared backoff on 429', () => {
	const retryAfterMs = 1_000;

	it('a 429 on one create holds back the creates of every other item for Retry-After', async () => {
		// The first create is rate-limited; the one sent beside it is slow, so the 429 comes back while
		// it still holds its slot and the other items' creates are waiting for a slot.
		sim.addFault({ route: 'create', type: 'status', status: 429, headers: { 'retry-after': String(retryAfterMs / 1000) } });
		sim.addFault({ route: 'create', type: 'delay', ms: 300 });
		const prompts = Array.from({ length: 6 }, (_, i) => `fast ${i}`);
		const { output, error } = await runKling(sim, batchParams({ maxConcurrentRequests: 2 }, { waitForCompletion: false }), {
			inputItems: promptItems(prompts),
		});
		expect(error).toBeUndefined();

		const creates = byArrival(sim.apiRequests('create'));
		const limited = creates.find((request) => request.status === 429)!;
		const inFlightBeside = creates.find((request) => request.fault === 'delay')!;
		expect(limited).toBeDefined();
		const after = creates.filter((request) => request !== limited && request !== inFlightBeside);
		// Nothing new is sent until Retry-After has passed: the pause holds the whole batch.
		for (const request of after) {
			expect(request.at - limited.at).toBeGreaterThanOrEqual(retryAfterMs - 5);
		}
		// The batch still succeeds, each task created once (the 429 created nothing).
		expect(creates).toHaveLength(prompts.length + 1);
		const made = creates.filter((request) => request.afterCreate).map((request) => request.body.prompt);
		expect(made.sort()).toEqual([...prompts].sort());
		expect(output[0].map((item) => item.json.status)).toEqual(prompts.map(() => 'submitted'));
	});

	it('a 429 on one task\'s poll delays the other tasks\' polls too, and the batch still succeeds', async () => {
		const prompts = Array.from({ length: 6 }, (_, i) => `fast ${i}`);
		sim.addFault({ route: 'query', type: 'status', status: 429, headers: { 'retry-after': String(retryAfterMs / 1000) } });
		sim.addFault({ route: 'query', type: 'delay', ms: 300 });
		const { output, error } = await runKling(sim, batchParams({ maxConcurrentRequests: 2 }), {
			inputItems: promptItems(prompts),
		});
		expect(error).toBeUndefined();

		const queries = byArrival(sim.apiRequests('query'));
		const limited = queries.find((request) => request.status === 429)!;
		const inFlightBeside = queries.find((request) => request.fault === 'delay')!;
		for (const request of queries.filter((q) => q !== limited && q !== inFlightBeside)) {
			expect(request.at - limited.at).toBeGreaterThanOrEqual(retryAfterMs - 5);
		}
		// The limited task was asked again (that is the reason for its second query); no one else was.
		expect(queries).toHaveLength(prompts.length + 1);
		expect(queries.filter((query) => query.taskId === limited.taskId)).toHaveLength(2);
		expect(sim.apiRequests('create')).toHaveLength(prompts.length);
		expect(output[0]).toHaveLength(prompts.length);
		expect(output[0].every((item) => item.binary?.data !== undefined)).toBe(true);
		expect(output[0].map((item) => item.pairedItem)).toEqual(prompts.map((_, item) => ({ item })));
	});
});

describe('Batch: streamed downloads and isolated failures', () => {
	it('hands the download stream itself to prepareBinaryData; the stored file is the served bytes', async () => {
		const { service } = await getBinarySetup('filesystem');
		const store = jest.spyOn(service, 'store');
		const { output, error } = await runKling(sim, batchParams(), {
			inputItems: promptItems(['big 0', 'fast 1']),
			binaryMode: 'filesystem',
		});
		expect(error).toBeUndefined();

		// Both images reached n8n's binary data store as streams, never as a Buffer held in memory.
		expect(store).toHaveBeenCalledTimes(2);
		for (const [, data] of store.mock.calls) {
			expect(Buffer.isBuffer(data)).toBe(false);
			expect(data).toBeInstanceOf(Readable);
		}
		const big = output[0][0].binary!.data;
		const task = taskFor('big 0');
		const expected = sim.expectedImageBytes(task.images[0].url);
		expect(expected.length).toBeGreaterThan(8 * 1024 * 1024 - 1024);
		expect(big.id).toMatch(/^filesystem/);
		const sha = (buffer: Buffer) => createHash('sha256').update(buffer).digest('hex');
		const stored = await binaryToBuffer(big);
		expect(stored.length).toBe(expected.length);
		expect(sha(stored)).toBe(sha(expected));
	});

	it('with Continue On Fail, a bad item and a failed task do not stop the others', async () => {
		const prompts = ['fast 0', '', 'fail 2', 'fast 3'];
		const { output, error } = await runKling(sim, batchParams(), {
			inputItems: promptItems(prompts),
			continueOnFail: true,
		});
		expect(error).toBeUndefined();
		const items = output[0];
		expect(items.map((item) => item.pairedItem)).toEqual([0, 1, 2, 3].map((item) => ({ item })));

		// The empty prompt never reached the API; the failed task is reported with its id.
		expect(sim.apiRequests('create').map((request) => request.body.prompt).sort()).toEqual(['fail 2', 'fast 0', 'fast 3']);
		expect(items[1].json.error).toMatch(/Prompt is empty/);
		expect(items[1].json.task_id).toBeUndefined();
		expect(items[2].json.error).toMatch(/Simulated content rejection/);
		expect(items[2].json.task_id).toBe(taskFor('fail 2').id);

		for (const index of [0, 3]) {
			const task = taskFor(prompts[index]);
			expect(items[index].json.task_id).toBe(task.id);
			expect(await binaryToBuffer(items[index].binary!.data)).toEqual(sim.expectedImageBytes(task.images[0].url));
		}
	});
});
