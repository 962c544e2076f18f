// The simulator's callbacks to a task's callback_url, observed by a loopback receiver: the statuses in order
// and the repeat of the final one, retries of failed deliveries, loopback-only delivery, and the forged
// and malformed callbacks it sends on request.
import * as http from 'node:http';
import { startSimulator, SimulatorOptions } from '../simulator';
import { createTask, queryTask } from './support/simulator-http';
import { listenOnLoopback } from './support/net';
import { sleep } from './support/wait';

interface Received {
	path: string;
	headers: http.IncomingHttpHeaders;
	text: string;
	json: any;
	/** The body did not arrive whole. */
	aborted: boolean;
}

/** A small loopback callback receiver; `status(n)` answers the n-th request (1-based). */
async function startReceiver(status: (n: number) => number = () => 200) {
	const received: Received[] = [];
	const server = http.createServer((req, res) => {
		const chunks: Buffer[] = [];
		let done = false;
		const finish = (aborted: boolean) => {
			if (done) return;
			done = true;
			const text = Buffer.concat(chunks).toString();
			let json: any;
			try {
				json = JSON.parse(text);
			} catch {
				json = undefined;
			}
			received.push({ path: req.url ?? '', headers: req.headers, text, json, aborted });
			if (!aborted) res.writeHead(status(received.length), { connection: 'close' }).end();
		};
		req.on('data', (c: Buffer) => chunks.push(c));
		req.on('end', () => finish(false));
		req.on('close', () => finish(!req.complete));
		req.on('error', () => undefined);
	});
	const url = await listenOnLoopback(server);
	return {
		url,
		received,
		/** Resolves once `count` requests arrived (rejects after 10 s). */
		async waitFor(count: number) {
			for (let waited = 0; received.length < count; waited += 10) {
				if (waited > 10_000) throw new Error(`receiver: ${received.length} of ${count} requests`);
				await sleep(10);
			}
			return received;
		},
		close: () => new Promise<void>((resolve) => server.close(() => resolve())),
	};
}

describe('simulator callbacks', () => {
	let now = 1_800_000_000_000;
	const closers: Array<() => Promise<void>> = [];

	async function start(options: SimulatorOptions = {}) {
		const sim = await startSimulator({ taskDurationMs: 1000, clock: () => now, callbackRetryDelayMs: 10, callbackRepeatDelayMs: 5, ...options });
		closers.push(() => sim.close());
		return sim;
	}

	async function receiver(status?: (n: number) => number) {
		const rx = await startReceiver(status);
		closers.push(rx.close);
		return rx;
	}

	afterEach(async () => {
		await Promise.all(closers.splice(0).map((close) => close()));
	});

	const statuses = (rx: { received: Received[] }, taskId?: string) =>
		rx.received.filter((r) => taskId === undefined || r.json?.task_id === taskId).map((r) => r.json?.task_status);

	it('POSTs submitted, processing and the final status, then repeats it; bodies are what the query answers', async () => {
		const sim = await start();
		const rx = await receiver();
		const { json } = await createTask(sim, { prompt: 'p', n: 2, external_task_id: 'cb-1', callback_url: `${rx.url}/hook?x=1` });
		const id = json.data.task_id;
		await sim.flushCallbacks();
		expect(statuses(rx)).toEqual(['submitted']);
		expect(rx.received[0].json).toEqual({
			task_id: id,
			task_info: { external_task_id: 'cb-1' },
			task_status: 'submitted',
			task_status_msg: '',
			created_at: json.data.created_at,
			updated_at: json.data.created_at,
		});

		now += 500;
		await sim.flushCallbacks();
		const processing = (await queryTask(sim, id)).json.data;
		now += 500;
		await sim.flushCallbacks();
		const final = (await queryTask(sim, id)).json.data;
		expect(statuses(rx)).toEqual(['submitted', 'processing', 'succeed', 'succeed']);
		expect(rx.received[1].json).toEqual(processing);
		expect(rx.received[2].json).toEqual(final);
		expect(rx.received[3].json).toEqual(final);
		expect(final.task_result.images).toHaveLength(2);

		for (const r of rx.received) {
			expect(r.path).toBe('/hook?x=1');
			expect(r.headers['content-type']).toBe('application/json');
			expect(r.headers.authorization).toBeUndefined();
			expect(JSON.stringify(r.headers) + r.text).not.toContain(sim.apiKey);
		}
		expect(sim.callbacks().map((c) => [c.kind, c.taskStatus, c.attempt, c.responseStatus, c.ok, c.url])).toEqual([
			['status', 'submitted', 1, 200, true, `${rx.url}/hook?x=1`],
			['status', 'processing', 1, 200, true, `${rx.url}/hook?x=1`],
			['status', 'succeed', 1, 200, true, `${rx.url}/hook?x=1`],
			['repeat', 'succeed', 1, 200, true, `${rx.url}/hook?x=1`],
		]);
		expect(sim.apiRequests('create')[0].headers.authorization).toBe(`Bearer ${sim.apiKey}`);
	});

	it('a clock jump sends each status in order; failed tasks; failTask before processing skips it', async () => {
		const sim = await start({ taskPlan: (_b, n) => (n === 1 ? { outcome: 'failed', failReason: 'content policy' } : undefined) });
		const rx = await receiver();
		const failing = (await createTask(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
		now += 5000;
		await sim.flushCallbacks();
		expect(statuses(rx, failing)).toEqual(['submitted', 'processing', 'failed', 'failed']);
		expect(rx.received[2].json).toMatchObject({ task_status_msg: 'content policy' });
		expect(rx.received[2].json.task_result).toBeUndefined();

		const stopped = (await createTask(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
		await sim.flushCallbacks();
		sim.failTask(stopped, 'moderation');
		await sim.flushCallbacks();
		expect(statuses(rx, stopped)).toEqual(['submitted', 'failed', 'failed']);
		expect(rx.received[rx.received.length - 1].json).toMatchObject({ task_status: 'failed', task_status_msg: 'moderation' });
	});

	it('callbackWrapped wraps the body in {code, message, data}; callbackRepeats: 0 sends the final status once', async () => {
		const sim = await start({ callbackWrapped: true, callbackRepeats: 0 });
		const rx = await receiver();
		const id = (await createTask(sim, { prompt: 'p', callback_url: rx.url })).json.data.task_id;
		now += 1000;
		await sim.flushCallbacks();
		expect(rx.received.map((r) => [r.json.code, r.json.message, r.json.data.task_id, r.json.data.task_status])).toEqual([
			[0, 'SUCCEED', id, 'submitted'],
			[0, 'SUCCEED', id, 'processing'],
			[0, 'SUCCEED', id, 'succeed'],
		]);
	});

	it('callbacks fire on the clock without anyone polling (real clock)', async () => {
		const sim = await startSimulator({ taskDurationMs: 100, callbackRepeatDelayMs: 5 });
		closers.push(() => sim.close());
		const rx = await receiver();
		await createTask(sim, { prompt: 'p', callback_url: rx.url });
		await rx.waitFor(4);
		expect(statuses(rx)).toEqual(['submitted', 'processing', 'succeed', 'succeed']);
		expect(sim.apiRequests('query')).toHaveLength(0);
	});

	it('retries a dropped delivery after a short delay', async () => {
		const sim = await start({ callbackRepeats: 0 });
		const rx = await receiver();
		sim.addFault({ route: 'callback', type: 'drop' });
		await createTask(sim, { prompt: 'p', callback_url: rx.url });
		await sim.flushCallbacks();
		expect(sim.callbacks().map((c) => [c.taskStatus, c.attempt, c.fault, c.ok])).toEqual([
			['submitted', 1, 'drop', false],
			['submitted', 2, undefined, true],
		]);
		expect(sim.callbacks()[0].error).toBe('simulated connection drop');
		// The receiver notices the cut connection on close, possibly after the retry arrived.
		const got = await rx.waitFor(2);
		expect(got.filter((r) => r.aborted)).toHaveLength(1);
		expect(got.filter((r) => !r.aborted).map((r) => r.json.task_status)).toEqual(['submitted']);
	});

	it('retries a non-2xx answer at most twice, then goes on with the next status', async () => {
		const sim = await start();
		const rx = await receiver((n) => (n <= 3 ? 503 : 200));
		await createTask(sim, { prompt: 'p', callback_url: rx.url });
		await sim.flushCallbacks();
		now += 1000;
		await sim.flushCallbacks();
		expect(sim.callbacks().map((c) => [c.kind, c.taskStatus, c.attempt, c.responseStatus])).toEqual([
			['status', 'submitted', 1, 503],
			['status', 'submitted', 2, 503],
			['status', 'submitted', 3, 503],
			['status', 'processing', 1, 200],
			['status', 'succeed', 1, 200],
			['repeat', 'succeed', 1, 200],
		]);
		expect(rx.received).toHaveLength(6);
	});

	it('never calls a host off the machine: such callbacks are recorded, not delivered', async () => {
		const sim = await start({ taskDurationMs: 0 });
		await createTask(sim, { prompt: 'p', callback_url: 'https://example.com/hook' });
		await sim.flushCallbacks();
		expect(sim.callbacks().map((c) => [c.kind, c.taskStatus, c.notDelivered])).toEqual([
			['status', 'submitted', true],
			['status', 'succeed', true],
			['repeat', 'succeed', true],
		]);
		expect(sim.callbacks()[0].error).toContain('loopback');
	});

	it('reset() stops a task’s callbacks', async () => {
		const sim = await start();
		const rx = await receiver();
		await createTask(sim, { prompt: 'p', callback_url: rx.url });
		await sim.flushCallbacks();
		sim.reset();
		now += 1000;
		await sim.flushCallbacks();
		expect(statuses(rx)).toEqual(['submitted']);
		expect(sim.callbacks()).toEqual([]);
	});

	it('sendForgedCallback: an unknown task id, or success claimed for a task still processing', async () => {
		const sim = await start();
		const rx = await receiver();
		const unknown = await sim.sendForgedCallback(rx.url);
		expect(unknown).toMatchObject({ kind: 'forged', ok: true, responseStatus: 200 });
		const forgedId = rx.received[0].json.task_id;
		expect(sim.tasks.has(forgedId)).toBe(false);
		expect(rx.received[0].json).toMatchObject({ task_status: 'succeed', task_result: { images: [{ index: 0 }] } });

		const { json } = await createTask(sim, { prompt: 'p', external_task_id: 'mine' });
		now += 500;
		await sim.sendForgedCallback(rx.url, { taskId: json.data.task_id, imageUrl: 'http://127.0.0.3:1/evil.png', wrapped: true });
		expect(sim.taskStatus(json.data.task_id)).toBe('processing');
		expect(rx.received[1].json).toMatchObject({
			code: 0,
			data: {
				task_id: json.data.task_id,
				task_info: { external_task_id: 'mine' },
				task_status: 'succeed',
				task_result: { images: [{ index: 0, url: 'http://127.0.0.3:1/evil.png' }] },
			},
		});
		await sim.sendForgedCallback(rx.url, { body: { anything: true } });
		expect(rx.received[2].json).toEqual({ anything: true });
		expect(() => sim.sendForgedCallback('ftp://127.0.0.1/x')).toThrow(TypeError);
	});

	it('sendMalformedCallback: not JSON, no task id, empty, an array', async () => {
		const sim = await start();
		const rx = await receiver();
		for (const kind of ['notJson', 'noTaskId', 'empty', 'array'] as const) {
			expect(await sim.sendMalformedCallback(rx.url, kind)).toMatchObject({ kind: 'malformed', malformed: kind, ok: true });
		}
		const [notJson, noTaskId, empty, array] = rx.received;
		expect(notJson.headers['content-type']).toBe('application/json');
		expect(notJson.json).toBeUndefined();
		expect(notJson.text.length).toBeGreaterThan(0);
		expect(noTaskId.json).toMatchObject({ task_status: 'succeed' });
		expect(noTaskId.json.task_id).toBeUndefined();
		expect(empty.text).toBe('');
		expect(array.json).toEqual([]);
		expect(() => sim.sendMalformedCallback(rx.url, 'weird' as any)).toThrow(TypeError);
	});

	it('rejects callback faults other than drop and delay', async () => {
		const sim = await start();
		expect(() => sim.addFault({ route: 'callback', type: 'status', status: 500 } as any)).toThrow(TypeError);
		expect(sim.addFault({ route: 'callback', type: 'delay', ms: 1 })).toMatchObject({ remaining: 1 });
	});
});
