// Simulator: the account's parallel-task limit (slots, code 1303), the account error codes of
// CONTRACT.md scripted as faults, and CometAPI's own error envelope.
import { startSimulator, Simulator, SimulatorOptions } from '../simulator';
import { createTask, queryTask } from './support/simulator-http';

const LIMIT_MESSAGE = 'parallel task over resource pack limit';

describe('simulator account', () => {
	let now = 1_800_000_000_000;
	const sims: Simulator[] = [];

	/** A simulator on the test's clock; tasks take 1000 ms. Closed after each test. */
	async function start(options: SimulatorOptions = {}) {
		const sim = await startSimulator({ taskDurationMs: 1000, clock: () => now, ...options });
		sims.push(sim);
		return sim;
	}

	afterEach(async () => {
		await Promise.all(sims.splice(0).map((s) => s.close()));
	});

	describe('parallel-task slots', () => {
		it('admits tasks while their images fit, rejects with 1303, admits again once a task ends', async () => {
			const sim = await start({ parallelSlots: 3 });
			const first = await createTask(sim, { prompt: 'p', n: 2 });
			expect(first.json.code).toBe(0);
			now += 400;
			expect((await createTask(sim, { prompt: 'p', n: 1 })).json.code).toBe(0);

			const rejected = await createTask(sim, { prompt: 'p' });
			expect(rejected.status).toBe(429);
			expect(rejected.json).toEqual({ code: 1303, message: LIMIT_MESSAGE, request_id: expect.any(String) });
			expect(rejected.headers.get('retry-after')).toBeNull();
			expect(sim.tasks.size).toBe(2);
			expect(sim.slotsInUse()).toBe(3);

			now += 600; // the first task (2 slots) ends; the second still runs
			expect(sim.taskStatus(first.json.data.task_id)).toBe('succeed');
			expect(sim.slotsInUse()).toBe(1);
			expect((await createTask(sim, { prompt: 'p', n: 2 })).json.code).toBe(0);
			expect((await createTask(sim, { prompt: 'p' })).status).toBe(429);

			expect(sim.apiRequests('create').map((r) => [r.slots, r.afterCreate, r.rejectedForLimit ?? false])).toEqual([
				[2, true, false],
				[1, true, false],
				[1, false, true],
				[2, true, false],
				[1, false, true],
			]);
			expect(sim.stats()).toEqual({
				acceptedCreates: 3,
				rejectedCreates: 2,
				maxSlotsInUse: 3,
				slotsInUse: 3,
				parallelSlots: 3,
			});
		});

		it('a series takes series_amount slots (default 4); n is ignored for series', async () => {
			const sim = await start({ parallelSlots: 4 });
			expect((await createTask(sim, { prompt: 'p', result_type: 'series', n: 1 })).json.code).toBe(0);
			expect(sim.slotsInUse()).toBe(4);
			expect((await createTask(sim, { prompt: 'p' })).json.code).toBe(1303);
			now += 1000;
			const tooBig = await createTask(sim, { prompt: 'p', result_type: 'series', series_amount: 5 });
			expect(tooBig.json.code).toBe(1303);
			expect((await createTask(sim, { prompt: 'p', n: 9, result_type: 'series', series_amount: 2 })).json.code).toBe(0);
			expect(sim.apiRequests('create').map((r) => r.slots)).toEqual([4, 1, 5, 2]);
		});

		it('queries never count and still answer while the account is full', async () => {
			const sim = await start({ parallelSlots: 1 });
			const { json } = await createTask(sim, { prompt: 'p' });
			for (let i = 0; i < 3; i++) expect((await queryTask(sim, json.data.task_id)).json.code).toBe(0);
			expect(sim.stats()).toMatchObject({ acceptedCreates: 1, rejectedCreates: 0, maxSlotsInUse: 1 });
			expect((await createTask(sim, { prompt: 'p' })).json.code).toBe(1303);
		});

		it('answers 1303 as HTTP 200 in code200 style, and parallelLimitStyle overrides errorStyle', async () => {
			const code200 = await start({ parallelSlots: 0, errorStyle: 'code200' });
			expect(await createTask(code200, { prompt: 'p' })).toMatchObject({ status: 200, json: { code: 1303, message: LIMIT_MESSAGE } });

			const http200 = await start({ parallelSlots: 0, parallelLimitStyle: 'code200' });
			expect(await createTask(http200, { prompt: 'p' })).toMatchObject({ status: 200, json: { code: 1303 } });
			expect((await createTask(http200, { prompt: 'p', n: 0 })).status).toBe(400);

			const http429 = await start({ parallelSlots: 0, errorStyle: 'code200', parallelLimitStyle: 'http' });
			expect(await createTask(http429, { prompt: 'p' })).toMatchObject({ status: 429, json: { code: 1303 } });
		});

		it('invalid bodies and auth errors are answered before the limit is considered', async () => {
			const sim = await start({ parallelSlots: 0 });
			expect((await createTask(sim, { prompt: '' })).status).toBe(400);
			expect((await createTask(sim, { prompt: 'p' }, 'wrong')).status).toBe(401);
			expect(sim.stats().rejectedCreates).toBe(0);
		});

		it('setParallelSlots changes the limit mid-run; occupySlots takes slots for other workflows', async () => {
			const sim = await start();
			expect(sim.stats().parallelSlots).toBeUndefined();
			for (let i = 0; i < 3; i++) expect((await createTask(sim, { prompt: 'p', n: 3 })).json.code).toBe(0);
			sim.setParallelSlots(9); // 9 slots in use: full
			expect((await createTask(sim, { prompt: 'p', n: 1 })).json.code).toBe(1303);
			now += 1000;

			const other = sim.occupySlots(8, 500); // another workflow on the same account
			expect(sim.slotsInUse()).toBe(8);
			expect((await createTask(sim, { prompt: 'p', n: 2 })).json.code).toBe(1303);
			expect((await createTask(sim, { prompt: 'p', n: 1 })).json.code).toBe(0);
			now += 500; // the other workflow's tasks end
			expect(sim.slotsInUse()).toBe(1);

			const held = sim.occupySlots(8);
			expect((await createTask(sim, { prompt: 'p', n: 1 })).json.code).toBe(1303);
			held.release();
			expect((await createTask(sim, { prompt: 'p', n: 1 })).json.code).toBe(0);
			expect(other.slots).toBe(8);

			sim.setParallelSlots(undefined);
			expect((await createTask(sim, { prompt: 'p', n: 9 })).json.code).toBe(0);
			expect(sim.stats()).toMatchObject({ acceptedCreates: 6, rejectedCreates: 3, maxSlotsInUse: 11, slotsInUse: 11 });
			expect(() => sim.setParallelSlots(-1)).toThrow(RangeError);
		});

		it('a task failed by failTask frees its slots; reset() restores the configured limit', async () => {
			const sim = await start({ parallelSlots: 2 });
			const { json } = await createTask(sim, { prompt: 'p', n: 2 });
			expect((await createTask(sim, { prompt: 'p' })).json.code).toBe(1303);
			sim.failTask(json.data.task_id, 'stopped');
			expect(sim.slotsInUse()).toBe(0);
			expect((await createTask(sim, { prompt: 'p' })).json.code).toBe(0);

			sim.setParallelSlots(0);
			sim.occupySlots(5);
			sim.reset();
			expect(sim.stats()).toEqual({ acceptedCreates: 0, rejectedCreates: 0, maxSlotsInUse: 0, slotsInUse: 0, parallelSlots: 2 });
			expect((await createTask(sim, { prompt: 'p', n: 2 })).json.code).toBe(0);
		});
	});

	describe('account error codes (CONTRACT.md) as faults', () => {
		const families: Array<[number, number, string]> = [
			[401, 1000, 'Authentication failed'],
			[401, 1001, 'Authorization is empty'],
			[401, 1002, 'Authorization is invalid'],
			[401, 1003, 'Authorization is not yet valid'],
			[401, 1004, 'Authorization has expired'],
			[429, 1100, 'Account exception'],
			[429, 1101, 'Account in arrears'],
			[429, 1102, 'Resource pack exhausted or expired'],
			[429, 1302, 'Rate limited'],
		];

		it.each(families)('HTTP %i with code %i on create and query', async (status, code, message) => {
			const sim = await start();
			sim.addFault({ route: 'create', type: 'status', status, code, message });
			const res = await createTask(sim, { prompt: 'p' });
			expect(res.status).toBe(status);
			expect(res.json).toEqual({ code, message, request_id: expect.any(String) });
			expect(sim.tasks.size).toBe(0);

			sim.addFault({ route: 'query', type: 'status', status, code, message });
			expect(await queryTask(sim, 'sim-any')).toMatchObject({ status, json: { code, message } });
		});

		it('the same codes as HTTP 200 with a non-zero code', async () => {
			const sim = await start();
			sim.addFault({ route: 'create', type: 'code', code: 1101, message: 'Account in arrears' });
			expect(await createTask(sim, { prompt: 'p' })).toMatchObject({ status: 200, json: { code: 1101 } });
			expect(sim.apiRequests('create')[0]).toMatchObject({ fault: 'code', afterCreate: false });
		});

		it('a rate limit with Retry-After; status faults default code to the HTTP status', async () => {
			const sim = await start();
			sim.addFault({ route: 'create', type: 'status', status: 429, code: 1302, headers: { 'retry-after': '7' } });
			sim.addFault({ route: 'create', type: 'status', status: 429 });
			const limited = await createTask(sim, { prompt: 'p' });
			expect(limited.headers.get('retry-after')).toBe('7');
			expect(limited.json).toMatchObject({ code: 1302, message: 'Too Many Requests' });
			expect((await createTask(sim, { prompt: 'p' })).json).toMatchObject({ code: 429, message: 'Too Many Requests' });
		});
	});

	describe('CometAPI error envelope', () => {
		it('cometError fault: the gateway envelope with any status, type, param and code', async () => {
			const sim = await start();
			sim.addFault({ route: 'create', type: 'cometError', status: 400, message: 'bad model', param: 'model_name', code: 'invalid_request' });
			sim.addFault({
				route: 'query',
				type: 'cometError',
				status: 403,
				message: 'user quota is not enough',
				code: 'insufficient_user_quota',
			});
			const bad = await createTask(sim, { prompt: 'p' });
			expect(bad.status).toBe(400);
			expect(bad.json).toEqual({
				error: { message: 'bad model', type: 'comet_api_error', param: 'model_name', code: 'invalid_request' },
			});
			expect(sim.tasks.size).toBe(0);
			const quota = await queryTask(sim, 'sim-x');
			expect(quota).toEqual({
				status: 403,
				json: { error: { message: 'user quota is not enough', type: 'comet_api_error', param: '', code: 'insufficient_user_quota' } },
			});
			expect(() => sim.addFault({ route: 'image', type: 'cometError', status: 401 })).toThrow(TypeError);
			expect(() => sim.addFault({ route: 'create', type: 'cometError' } as any)).toThrow(TypeError);
		});

		it("errorEnvelope 'comet': wrong and missing keys get HTTP 401 in the gateway envelope, even in code200 style", async () => {
			const sim = await start({ errorEnvelope: 'comet', errorStyle: 'code200' });
			const wrong = await createTask(sim, { prompt: 'p' }, 'nope');
			expect(wrong.status).toBe(401);
			expect(wrong.json).toEqual({
				error: { message: 'Invalid API key', type: 'comet_api_error', param: '', code: 'invalid_api_key' },
			});
			const missing = await queryTask(sim, 'sim-x', {});
			expect(missing.status).toBe(401);
			expect(missing.json.error).toMatchObject({ type: 'comet_api_error', code: 'invalid_api_key' });
			// Other errors keep the Kling envelope and style.
			expect(await queryTask(sim, 'sim-x')).toMatchObject({ status: 200, json: { code: 1203 } });
			await expect(startSimulator({ errorEnvelope: 'xml' as any })).rejects.toThrow(RangeError);
		});
	});
});
