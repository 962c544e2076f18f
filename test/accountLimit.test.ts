/**
 * Accounts with a parallel-task limit (Kling code 1303) and the error code families a real account
 * meets: every prompt of a batch larger than the limit finishes, each is created once, queued items
 * give up honestly, and each code family gets its own message.
 */
import type { INodeExecutionData } from 'n8n-workflow';

import type { Simulator, SimulatorOptions } from '../simulator';
import { createParams, errorMessage, runKling, startSim, withFastBackoff } from './support/kling';
import { sleep } from './support/wait';

type Json = Record<string, any>;

let sim: Simulator;
afterEach(async () => await sim?.close());

async function start(options: SimulatorOptions): Promise<Simulator> {
	sim = await startSim({ taskDurationMs: 300, ...options });
	return sim;
}

const prompts = (count: number) => Array.from({ length: count }, (_, i) => ({ json: { prompt: `prompt ${i}` } }));

async function runBatch(count: number, overrides: Json = {}, runOptions: Json = {}) {
	return await runKling(
		sim,
		createParams({ prompt: '={{ $json.prompt }}', ...overrides, options: { pollInterval: 1, maxWaitTime: 30, ...overrides.options } }),
		{ inputItems: prompts(count), ...runOptions },
	);
}

/** Accepted creates per prompt: exactly one each means nothing was paid twice. */
function acceptedPerPrompt(): Map<string, number> {
	const counts = new Map<string, number>();
	for (const request of sim.apiRequests('create')) {
		if (request.rejectedForLimit || !request.taskId) continue;
		const prompt = (request.body as Json).prompt as string;
		counts.set(prompt, (counts.get(prompt) ?? 0) + 1);
	}
	return counts;
}

function json(item: INodeExecutionData): Json {
	return item.json as Json;
}

describe('a batch larger than the account parallel-task limit', () => {
	it.each(['http', 'code200'] as const)('finishes every prompt, each created once (1303 as %s)', async (style) => {
		await start({ parallelSlots: 3, parallelLimitStyle: style });
		const { output, error } = await runBatch(9);
		expect(error).toBeUndefined();
		expect(output[0]).toHaveLength(9);
		output[0].forEach((item, index) => {
			expect(item.pairedItem).toEqual({ item: index });
			expect(item.binary?.data).toBeDefined();
		});
		const accepted = acceptedPerPrompt();
		expect(accepted.size).toBe(9);
		expect([...accepted.values()].every((count) => count === 1)).toBe(true);
		const stats = sim.stats();
		expect(stats.acceptedCreates).toBe(9);
		expect(stats.maxSlotsInUse).toBeLessThanOrEqual(3);
		// The node learns the limit: at most one rejected create per item on average.
		expect(stats.rejectedCreates).toBeLessThanOrEqual(9);
	});

	it('counts slots per image: tasks of n = 2 on a 3-slot account run one at a time', async () => {
		await start({ parallelSlots: 3 });
		const { output, error } = await runBatch(4, { n: 2 });
		expect(error).toBeUndefined();
		expect(output[0]).toHaveLength(8);
		expect(sim.stats()).toMatchObject({ acceptedCreates: 4 });
		expect(sim.stats().maxSlotsInUse).toBeLessThanOrEqual(3);
		expect(sim.stats().rejectedCreates).toBeLessThanOrEqual(4);
	});

	it('keeps going when the limit drops in the middle of the batch (other workflows)', async () => {
		await start({ parallelSlots: 4 });
		const running = runBatch(10);
		while (sim.stats().acceptedCreates < 4) await sleep(10);
		sim.setParallelSlots(1);
		const { output, error } = await running;
		expect(error).toBeUndefined();
		expect(output[0]).toHaveLength(10);
		expect([...acceptedPerPrompt().values()]).toEqual(Array(10).fill(1));
	});

	it('does not wait for slots when creating without waiting: all created, the rest queued until a slot frees', async () => {
		await start({ parallelSlots: 2 });
		const { output, error } = await runBatch(5, { waitForCompletion: false });
		expect(error).toBeUndefined();
		expect(output[0].map((item) => json(item).status)).toEqual(Array(5).fill('submitted'));
		expect(sim.stats().acceptedCreates).toBe(5);
		expect(sim.stats().maxSlotsInUse).toBeLessThanOrEqual(2);
	});
});

describe('items queued for a slot', () => {
	it('give up after Max Wait Time without progress: never created, nothing charged', async () => {
		await start({ parallelSlots: 2 });
		sim.occupySlots(2);
		const { output, error } = await runBatch(3, { options: { maxWaitTime: 2 } }, {});
		expect(output).toEqual([]);
		expect(errorMessage(error)).toMatch(/^The task was never created, so nothing was charged: no slot freed up in 2 s .* \[item 0\]$/);
		expect((error as { description?: string }).description).toContain('Items never sent (nothing charged for them): 1, 2.');
		expect(sim.tasks.size).toBe(0);
		expect(sim.stats().rejectedCreates).toBeLessThanOrEqual(3);
	});

	it('with Continue On Fail, each queued item gets its own error item', async () => {
		await start({ parallelSlots: 1 });
		sim.occupySlots(1);
		const { output } = await runBatch(2, { options: { maxWaitTime: 2 } }, { continueOnFail: true });
		expect(output[0].map((item) => json(item).error)).toEqual([
			expect.stringMatching(/never created, so nothing was charged.*\[item 0\]/),
			expect.stringMatching(/never created, so nothing was charged.*\[item 1\]/),
		]);
	});

	it('stop at once when the workflow is stopped: nothing is sent afterwards, the error says what was never sent', async () => {
		await start({ parallelSlots: 1, taskDurationMs: 60_000 });
		const controller = new AbortController();
		const running = runBatch(3, {}, { abortSignal: controller.signal });
		// The first burst (limit still unknown) sends all 3: one is accepted, two are refused. Once both
		// refusals are in, nothing is on its way, so any create after the stop would be a new one.
		while (sim.stats().rejectedCreates < 2) await sleep(10);
		const createsAtStop = sim.apiRequests('create').length;
		controller.abort();
		const { error } = await running;
		await sleep(200);
		expect(sim.apiRequests('create')).toHaveLength(createsAtStop);
		const description = (error as { description?: string }).description ?? '';
		const created = sim.apiRequests('create').find((request) => request.taskId && !request.rejectedForLimit)!;
		expect(`${errorMessage(error)} ${description}`).toContain(`task ${created.taskId}`);
		expect(`${errorMessage(error)} ${description}`).toMatch(/never (sent|created)/);
	});

	it('a final error beside queued items: with Continue On Fail the others finish; without, nothing more is sent', async () => {
		await start({ parallelSlots: 1 });
		sim.addFault({ route: 'create', type: 'code', code: 1201, message: 'Invalid parameter: prompt' });
		const kept = await runBatch(3, {}, { continueOnFail: true });
		expect(json(kept.output[0][0]).error).toMatch(/Invalid parameter: prompt \(HTTP 200, code 1201/);
		expect(kept.output[0].slice(1).every((item) => item.binary?.data)).toBe(true);

		sim.reset();
		sim.setParallelSlots(1);
		sim.addFault({ route: 'create', type: 'code', code: 1201, message: 'Invalid parameter: prompt' });
		const stopped = await runBatch(3, { options: { maxConcurrentRequests: 1 } });
		expect(errorMessage(stopped.error)).toMatch(/Invalid parameter: prompt .*\[item 0\]/);
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect((stopped.error as { description?: string }).description).toContain('Items never sent (nothing charged for them): 1, 2.');
	});
});

describe('error code families', () => {
	async function createOne(): Promise<Json> {
		const { output } = await runKling(sim, createParams({ waitForCompletion: false }), { continueOnFail: true });
		return json(output[0][0]);
	}

	it.each([
		[401, 1001, /Check the API key/],
		[429, 1100, /account has an exception/],
		[429, 1101, /in arrears/],
		[429, 1102, /resource pack is used up or expired/],
		[400, 1201, /Change the prompt, reference images or fields/],
	])('HTTP %i, code %i: final, one create, a message that says what to do', async (status, code, hint) => {
		await start({});
		sim.addFault({ route: 'create', type: 'status', status, code, message: `provider says ${code}` });
		const failed = await createOne();
		expect(failed.error).toMatch(new RegExp(`provider says ${code} \\(HTTP ${status}, code ${code}`));
		expect(failed.description).toMatch(hint);
		expect(sim.apiRequests('create')).toHaveLength(1);
	});

	it('another 429 is a rate limit: retried, then created once', async () => {
		await start({});
		sim.addFault({ route: 'create', type: 'status', status: 429, code: 1302, message: 'rate limited', headers: { 'retry-after': '0' } });
		const created = await withFastBackoff(createOne);
		expect(created.status).toBe('submitted');
		expect(sim.apiRequests('create')).toHaveLength(2);
	});

	it("shows CometAPI's own error envelope: message, type, code and param", async () => {
		await start({});
		sim.addFault({ route: 'create', type: 'cometError', status: 400, message: 'model not supported', param: 'model_name', code: 'invalid_model' });
		const failed = await createOne();
		expect(failed.error).toBe(
			'CometAPI could not create the image task: model not supported (HTTP 400, code invalid_model, type comet_api_error, param model_name) [item 0]',
		);
	});

	it("treats the envelope's insufficient_user_quota as an account error, also on queries", async () => {
		await start({});
		const { output } = await runKling(sim, createParams({ waitForCompletion: false }));
		const taskId = json(output[0][0]).task_id;
		sim.addFault({ route: 'query', type: 'cometError', status: 403, message: 'insufficient quota', code: 'insufficient_user_quota' });
		const result = await runKling(sim, { operation: 'getTask', taskId }, { continueOnFail: true });
		expect(json(result.output[0][0]).error).toMatch(/insufficient quota \(HTTP 403, code insufficient_user_quota, type comet_api_error\)/);
		expect(json(result.output[0][0]).description).toMatch(/balance or quota/);
	});
});
