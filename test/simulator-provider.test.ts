// The simulator's provider behaviours beyond the happy path, as the contract's "What the world
// sends beyond the happy path" and "Callbacks" describe them: status spellings, a query replica
// that lags behind the callbacks, a final callback sent exactly once, and `error: null` in success
// envelopes. Everything is observed through real HTTP: fetch for the API, an echo server as the
// callback receiver.
import { EchoServer, startEchoServer, startSimulator, Simulator, SimulatorOptions } from '../simulator';
import { createTask as create, queryTask as query } from './support/simulator-http';


/** The status word a query answers, or the error message when it is not a success. */
async function queriedStatus(sim: Simulator, taskId: string): Promise<string> {
	const { json } = await query(sim, taskId);
	return json.code === 0 ? json.data.task_status : json.message;
}

/** task_status of every callback body the receiver got (bare or wrapped), in arrival order. */
const receivedStatuses = (rx: EchoServer) => rx.requests.map((r) => (r.body.data ?? r.body).task_status);

describe('simulator: provider behaviours beyond the happy path', () => {
	let now = 1_800_000_000_000;
	const closers: Array<() => Promise<void>> = [];

	async function start(options: SimulatorOptions = {}) {
		const sim = await startSimulator({ taskDurationMs: 1000, clock: () => now, callbackRetryDelayMs: 5, callbackRepeatDelayMs: 5, ...options });
		closers.push(() => sim.close());
		return sim;
	}

	async function receiver(status = 200) {
		const rx = await startEchoServer({ respond: { status } });
		closers.push(() => rx.close());
		return rx;
	}

	/** Moves the clock and sends (and waits for) every callback that is due by then. */
	async function advance(sim: Simulator, ms: number) {
		now += ms;
		await sim.flushCallbacks();
	}

	afterEach(async () => {
		await Promise.all(closers.splice(0).map((close) => close()));
	});

	describe('statusSpelling', () => {
		it.each([
			['upper', ['SUBMITTED', 'PROCESSING', 'SUCCEED']],
			['capitalized', ['Submitted', 'Processing', 'Succeed']],
			['past', ['submitted', 'processing', 'succeeded']],
		] as const)('%s: create, query and callback bodies carry the spelled word; bookkeeping keeps the contract word', async (spelling, words) => {
			const sim = await start({ statusSpelling: spelling, callbackRepeats: 0 });
			const rx = await receiver();
			const created = await create(sim, { prompt: 'p', callback_url: rx.url });
			const id = created.json.data.task_id;
			expect(created.json.data.task_status).toBe(words[0]);

			const queried: string[] = [];
			await sim.flushCallbacks();
			queried.push(await queriedStatus(sim, id));
			await advance(sim, 500);
			queried.push(await queriedStatus(sim, id));
			await advance(sim, 500);
			queried.push(await queriedStatus(sim, id));

			expect(queried).toEqual(words);
			expect(receivedStatuses(rx)).toEqual(words);
			expect(sim.taskStatus(id)).toBe('succeed');
			expect(sim.callbacks().map((c) => c.taskStatus)).toEqual(['submitted', 'processing', 'succeed']);
		});

		it("past: a failed task is 'failed', a task stopped from outside (failTask) is 'canceled'", async () => {
			const sim = await start({
				statusSpelling: 'past',
				callbackRepeats: 0,
				taskPlan: (_body, n) => (n === 1 ? { outcome: 'failed', failReason: 'content policy' } : undefined),
			});
			const rx = await receiver();
			const failing = (await create(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
			const stopped = (await create(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
			await advance(sim, 500);
			sim.failTask(stopped, 'stopped by the account owner');
			await advance(sim, 500);

			expect(await queriedStatus(sim, failing)).toBe('failed');
			expect(await queriedStatus(sim, stopped)).toBe('canceled');
			const finals = rx.requests.filter((r) => !['submitted', 'processing'].includes(r.body.task_status));
			expect(finals.map((r) => [r.body.task_id, r.body.task_status])).toEqual(
				expect.arrayContaining([
					[failing, 'failed'],
					[stopped, 'canceled'],
				]),
			);
			expect(finals).toHaveLength(2);
			expect([sim.taskStatus(failing), sim.taskStatus(stopped)]).toEqual(['failed', 'failed']);
		});

		it('a function decides the word, also inside wrapped callbacks and forged callbacks', async () => {
			const sim = await start({ statusSpelling: (status) => `task.${status}`, callbackWrapped: true, callbackRepeats: 0 });
			const rx = await receiver();
			const id = (await create(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
			await advance(sim, 1000);
			expect(await queriedStatus(sim, id)).toBe('task.succeed');
			expect(receivedStatuses(rx)).toEqual(['task.submitted', 'task.processing', 'task.succeed']);

			await sim.sendForgedCallback(rx.url);
			expect(rx.requests[rx.requests.length - 1].body.data.task_status).toBe('task.succeed');
		});

		it('the default keeps the contract words, and an unknown preset is refused', async () => {
			const sim = await start({ callbackRepeats: 0 });
			const rx = await receiver();
			const id = (await create(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
			await advance(sim, 1000);
			expect(await queriedStatus(sim, id)).toBe('succeed');
			expect(receivedStatuses(rx)).toEqual(['submitted', 'processing', 'succeed']);
			await expect(startSimulator({ statusSpelling: 'lower' as any })).rejects.toThrow(RangeError);
		});
	});

	describe('queryLagMs', () => {
		it('a new task is task_not_exist, then each status shows up late; callbacks come on time', async () => {
			const sim = await start({ queryLagMs: 300, callbackRepeats: 0 });
			const rx = await receiver();
			const id = (await create(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
			await sim.flushCallbacks();

			// [ms since create, what the query answers, what the callbacks said so far]
			let elapsed = 0;
			const seen = [[elapsed, await queriedStatus(sim, id), receivedStatuses(rx)]];
			for (const step of [300, 200, 300, 200, 300]) {
				await advance(sim, step);
				elapsed += step;
				seen.push([elapsed, await queriedStatus(sim, id), receivedStatuses(rx)]);
			}
			expect(seen).toEqual([
				[0, 'task_not_exist', ['submitted']],
				[300, 'submitted', ['submitted']],
				[500, 'submitted', ['submitted', 'processing']],
				[800, 'processing', ['submitted', 'processing']],
				[1000, 'processing', ['submitted', 'processing', 'succeed']],
				[1300, 'succeed', ['submitted', 'processing', 'succeed']],
			]);
			// The simulator's own view is the primary's.
			expect(sim.taskStatus(id)).toBe('succeed');
		});

		it('a task plan\'s own queryLagMs lags that task only', async () => {
			const sim = await start({ taskPlan: (body) => (body.prompt === 'lagging' ? { queryLagMs: 5000 } : undefined) });
			const lagging = (await create(sim, { prompt: 'lagging' })).json.data.task_id;
			const prompt = (await create(sim, { prompt: 'p' })).json.data.task_id;
			await advance(sim, 1000);
			expect([await queriedStatus(sim, lagging), await queriedStatus(sim, prompt)]).toEqual(['task_not_exist', 'succeed']);
			expect(sim.taskStatus(lagging)).toBe('succeed');
		});

		it('task_not_exist during the lag is answered in the configured error style', async () => {
			const http = await start({ queryLagMs: 300 });
			const httpId = (await create(http, { prompt: 'p' })).json.data.task_id;
			expect(await query(http, httpId)).toEqual({ status: 404, json: expect.objectContaining({ code: 1203, message: 'task_not_exist' }) });

			const code200 = await start({ queryLagMs: 300, errorStyle: 'code200' });
			const code200Id = (await create(code200, { prompt: 'p' })).json.data.task_id;
			expect(await query(code200, code200Id)).toEqual({ status: 200, json: expect.objectContaining({ code: 1203, message: 'task_not_exist' }) });

			now += 300;
			expect((await query(http, httpId)).json.data.task_status).toBe('submitted');
			expect((await query(code200, code200Id)).json.data.task_status).toBe('submitted');
		});

		it('a task stopped by failTask is still processing for the replica until the lag has passed', async () => {
			const sim = await start({ queryLagMs: 300 });
			const id = (await create(sim, { prompt: 'p' })).json.data.task_id;
			now += 900; // the replica sees 600 ms: processing
			sim.failTask(id, 'moderation');
			expect(await queriedStatus(sim, id)).toBe('processing');
			now += 300;
			const { json } = await query(sim, id);
			expect([json.data.task_status, json.data.task_status_msg]).toEqual(['failed', 'moderation']);
		});
	});

	describe('the final callback exactly once (callbackRepeats: 0, callbackRetries: 0)', () => {
		const finalDeliveries = (rx: EchoServer) => rx.requests.filter((r) => r.body.task_status === 'succeed');

		it('is sent once and never retried although the receiver answers 500, while the query still says processing', async () => {
			const sim = await start({ callbackRepeats: 0, callbackRetries: 0, queryLagMs: 300 });
			const rx = await receiver(500);
			const id = (await create(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
			await advance(sim, 1000);
			expect(finalDeliveries(rx)).toHaveLength(1);
			expect(await queriedStatus(sim, id)).toBe('processing');

			await advance(sim, 5000); // long after: nothing more was sent
			expect(finalDeliveries(rx)).toHaveLength(1);
			expect(receivedStatuses(rx)).toEqual(['submitted', 'processing', 'succeed']);
			expect(sim.callbacks().map((c) => [c.taskStatus, c.attempt, c.responseStatus])).toEqual([
				['submitted', 1, 500],
				['processing', 1, 500],
				['succeed', 1, 500],
			]);
			expect(await queriedStatus(sim, id)).toBe('succeed');
		});

		it('the defaults, by contrast, retry a 500 and repeat the final status', async () => {
			const sim = await start();
			const rx = await receiver(500);
			await create(sim, { prompt: 'p', callback_url: rx.url });
			await advance(sim, 1000);
			expect(finalDeliveries(rx).length).toBeGreaterThan(1);
		});
	});

	describe('successErrorNull', () => {
		it('success envelopes carry error: null beside code 0; error answers do not', async () => {
			const sim = await start({ successErrorNull: true, callbackWrapped: true, callbackRepeats: 0 });
			const rx = await receiver();
			const created = await create(sim, { prompt: 'p', callback_url: rx.url });
			const id = created.json.data.task_id;
			await advance(sim, 1000);
			const queried = await query(sim, id);

			expect(created.json).toMatchObject({ code: 0, error: null, data: { task_id: id } });
			expect(queried.json).toMatchObject({ code: 0, error: null, data: { task_id: id, task_status: 'succeed' } });
			expect(rx.requests.map((r) => [r.body.code, r.body.error, r.body.data.task_status])).toEqual([
				[0, null, 'submitted'],
				[0, null, 'processing'],
				[0, null, 'succeed'],
			]);
			for (const r of rx.requests) expect(r.rawBody).toContain('"error":null');

			const unknown = await query(sim, 'no-such-task');
			const invalid = await create(sim, { n: 2 });
			for (const answer of [unknown, invalid]) {
				expect(answer.json.code).not.toBe(0);
				expect('error' in answer.json).toBe(false);
			}
		});

		it('by default success envelopes have no error member', async () => {
			const sim = await start({ callbackWrapped: true, callbackRepeats: 0 });
			const rx = await receiver();
			const created = await create(sim, { prompt: 'p', callback_url: rx.url });
			await advance(sim, 1000);
			const queried = await query(sim, created.json.data.task_id);
			for (const body of [created.json, queried.json, ...rx.requests.map((r) => r.body)]) {
				expect(body.code).toBe(0);
				expect('error' in body).toBe(false);
			}
		});
	});

	describe('taskPlan callbacksLost', () => {
		it('sends none of that task\'s callbacks, and every callback of the others', async () => {
			const sim = await start({ taskPlan: (_body, taskNumber) => (taskNumber === 1 ? { callbacksLost: true } : undefined) });
			const rx = await receiver();
			const lost = (await create(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
			const kept = (await create(sim, { prompt: 'q', callback_url: rx.url })).json.data.task_id;
			await advance(sim, 1000);
			expect(rx.requests.map((r) => r.body.task_id)).toEqual(rx.requests.map(() => kept));
			expect(receivedStatuses(rx)).toEqual(['submitted', 'processing', 'succeed', 'succeed']);
			const records = sim.callbacks().filter((c) => c.taskId === lost);
			expect(records.length).toBeGreaterThan(0);
			expect(records.every((c) => c.notDelivered && !c.ok)).toBe(true);
			expect(await queriedStatus(sim, lost)).toBe('succeed');
		});
	});
});
