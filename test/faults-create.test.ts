/**
 * Faults of the create request: a create is never sent twice unless the first one was certainly rejected;
 * one that may have created a task ends in a clear error naming its external task id; with "Continue On
 * Fail" the other items still complete.
 *
 * Items run with "Max Concurrent Requests" 1, so the first queued fault always hits item 0.
 */
import { DEFAULT_RETRY_POLICY as RETRY } from '../nodes/shared/request/retry';
import { startSimulator, type Fault, type Simulator } from '../simulator';
import { errorJson, type Json, ONE_AT_A_TIME, twoItemRuns } from './support/fault-runs';
import { API_KEY, createParams, errorMessage, runKling, startSim, withFastBackoff } from './support/kling';
import { freePort } from './support/net';
import { seededTaskPlan } from './support/simulator-http';

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim({ taskPlan: seededTaskPlan });
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

const { createTwo, createsOf } = twoItemRuns(() => sim);

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
