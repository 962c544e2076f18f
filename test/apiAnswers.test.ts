/**
 * What real hosts and users send the API client: success envelopes with `"error": null`, web pages
 * instead of API answers, the `/v1` Base URL CometAPI documents for its OpenAI-compatible API, and
 * Base URLs with credentials or tokens in them. Everything runs through the real node against the
 * simulator; the assertions are on the requests that reached it and on what a user sees.
 */
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';

import type { INodeExecutionData, INodeParameters } from 'n8n-workflow';

import type { Fault, Simulator } from '../simulator';
import { binaryToBuffer } from './harness';
import { API_KEY, createParams, everythingVisible, runKling, startSim, withFastBackoff } from './support/kling';

const CREATE_PATH = '/kling/v1/images/omni-image';
/** Tasks created with this prompt are done at once, so waiting takes one query. */
const QUICK_PROMPT = 'A lighthouse at dawn, done at once';
const QUICK = { pollInterval: 1, maxWaitTime: 10 };

/** A proxy's error page, with words that must never reach an error text. */
const PROXY_PAGE =
	'<!DOCTYPE html>\n<html><head><title>proxy-page-title</title></head><body><h1>proxy-page-marker</h1>' +
	'<p>upstream did not answer</p></body></html>';

function htmlAnswer(route: 'create' | 'query', status: number, times = 1): Fault {
	return { route, type: 'status', status, times, body: PROXY_PAGE, headers: { 'content-type': 'text/html; charset=utf-8' } };
}

function quickPlan(body: { prompt?: string }) {
	return body.prompt === QUICK_PROMPT ? { durationMs: 0 } : undefined;
}

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim({ taskPlan: quickPlan });
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

function host(): string {
	return new URL(sim.apiUrl).host;
}

async function run(parameters: INodeParameters, baseUrl = sim.apiUrl, inputItems?: INodeExecutionData[]) {
	return await runKling(sim, parameters, {
		credentials: { apiKey: API_KEY, baseUrl },
		continueOnFail: true,
		...(inputItems ? { inputItems } : {}),
	});
}

function createAndWait(overrides: INodeParameters = {}): INodeParameters {
	return createParams({ prompt: QUICK_PROMPT, options: QUICK, ...overrides });
}

/** A task created straight at the simulator, already succeeded. */
async function seedTask(target: Simulator = sim): Promise<string> {
	const response = await fetch(`${target.apiUrl}${CREATE_PATH}`, {
		method: 'POST',
		headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
		body: JSON.stringify({ prompt: QUICK_PROMPT, n: 2 }),
	});
	const taskId = ((await response.json()) as { data: { task_id: string } }).data.task_id;
	target.requests.length = 0;
	return taskId;
}

function errorOf(item: INodeExecutionData): { error: string; description?: string } {
	expect(item.json).toHaveProperty('error');
	return item.json as { error: string; description?: string };
}

/** The page's words and markup never reach anything a user sees. */
function expectNoPage(result: Awaited<ReturnType<typeof run>>): void {
	const visible = everythingVisible(result);
	for (const word of ['proxy-page-marker', 'proxy-page-title', 'upstream did not answer', '<html', '<!DOCTYPE', 'nginx', '<h1>']) {
		expect(visible).not.toContain(word);
	}
	expect(visible).not.toMatch(/Unexpected token|JSON at position|is not valid JSON/);
}

/** Every image item of a finished create: the task's images, byte for byte. */
async function expectImagesOf(items: INodeExecutionData[], target: Simulator = sim): Promise<void> {
	const task = [...target.tasks.values()][0];
	expect(items).toHaveLength(task.images.length);
	for (const [position, item] of items.entries()) {
		expect(item.json).toMatchObject({ task_id: task.id, status: 'succeed' });
		expect(await binaryToBuffer(item.binary!.data)).toEqual(target.expectedImageBytes(task.images[position].url));
	}
}

// ---------------------------------------------------------------------------------------------

describe('"error": null beside code 0 is a success', () => {
	let nullSim: Simulator;
	beforeAll(async () => {
		nullSim = await startSim({ taskPlan: quickPlan, successErrorNull: true });
	});
	afterEach(() => nullSim.reset());
	afterAll(async () => await nullSim.close());

	const runOn = async (parameters: INodeParameters, inputItems?: INodeExecutionData[]) =>
		await runKling(nullSim, parameters, { continueOnFail: true, ...(inputItems ? { inputItems } : {}) });

	it('a create without waiting outputs the task id (the create was charged: it must not become an error)', async () => {
		const { output, error } = await runOn(createAndWait({ waitForCompletion: false }));
		expect(error).toBeUndefined();
		const [create] = nullSim.apiRequests('create');
		expect(create.status).toBe(200);
		expect(output[0]).toHaveLength(1);
		expect(output[0][0].json).toMatchObject({ task_id: create.taskId, status: 'submitted' });
		expect(output[0][0].json).not.toHaveProperty('error');
	});

	it('Create and wait gets the images, with one create and queries answering error: null too', async () => {
		const { output, error } = await runOn(createAndWait({ n: 2 }));
		expect(error).toBeUndefined();
		expect(nullSim.apiRequests('create')).toHaveLength(1);
		expect(nullSim.apiRequests('query').length).toBeGreaterThanOrEqual(1);
		await expectImagesOf(output[0], nullSim);
	});

	it('Get Task and Wait for Completion read the task', async () => {
		const taskId = await seedTask(nullSim);
		const got = await runOn({ operation: 'getTask', taskId });
		expect(got.output[0][0].json).toMatchObject({ task_id: taskId, status: 'succeed', images: [{ index: 0 }, { index: 1 }] });
		const waited = await runOn({ operation: 'waitForCompletion', options: QUICK }, [{ json: { task_id: taskId } }]);
		expect(waited.output[0].map((item) => item.json.task_id)).toEqual([taskId, taskId]);
		expect(waited.output[0][0].binary?.data).toBeDefined();
	});

	it("an error object with members is still an error, even beside code 0 (CometAPI's envelope)", async () => {
		const taskId = await seedTask(nullSim);
		nullSim.addFault({
			route: 'query',
			type: 'status',
			status: 200,
			body: {
				code: 0,
				message: 'SUCCEED',
				error: { message: 'user quota is not enough', type: 'comet_api_error', param: '', code: 'insufficient_user_quota' },
				data: { task_id: taskId, task_status: 'succeed' },
			},
		});
		const { output } = await runOn({ operation: 'getTask', taskId });
		expect(errorOf(output[0][0]).error).toMatch(/could not query task .*user quota is not enough \(HTTP 200, code insufficient_user_quota/);
	});

	it('an empty error object says nothing went wrong either', async () => {
		const taskId = await seedTask(nullSim);
		nullSim.addFault({
			route: 'query',
			type: 'status',
			status: 200,
			body: { code: 0, message: 'SUCCEED', error: {}, data: { task_id: taskId, task_status: 'processing' } },
		});
		const { output } = await runOn({ operation: 'getTask', taskId });
		expect(output[0][0].json).toMatchObject({ task_id: taskId, status: 'processing' });
	});
});

// ---------------------------------------------------------------------------------------------

describe('an answer that is not the API (a proxy page, a web server at a wrong path)', () => {
	it('a create answered by an HTML 502 page: "may exist", naming host and status, not sent again, no HTML', async () => {
		sim.addFault({ ...htmlAnswer('create', 502), afterCreate: true });
		const result = await run(createAndWait({ waitForCompletion: false, additionalFields: { externalTaskId: 'ext-html-502' } }));
		expect(sim.apiRequests('create')).toHaveLength(1);
		const failed = errorOf(result.output[0][0]);
		expect(failed.error).toBe(
			`The create request got no usable answer (not an API answer from ${host()} (HTTP 502, an HTML page)): the task may have been created and charged [item 0]`,
		);
		expect(failed.description).toContain('Look for external task ID "ext-html-502"');
		expectNoPage(result);
	});

	it('a create answered by an HTML 404 page: not created, and the error says what to change in the Base URL', async () => {
		sim.addFault(htmlAnswer('create', 404));
		const result = await run(createAndWait({ waitForCompletion: false }));
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect(sim.tasks.size).toBe(0);
		const failed = errorOf(result.output[0][0]);
		expect(failed.error).toBe(`CometAPI could not create the image task: not an API answer from ${host()} (HTTP 404, an HTML page) [item 0]`);
		expect(failed.error).not.toMatch(/may have been created/);
		expect(failed.description).toBe(
			`${sim.apiUrl} does not serve CometAPI's Kling API (${CREATE_PATH} answered HTTP 404). Change the Base URL in the CometAPI credential to https://api.cometapi.com, or to the address your proxy serves CometAPI's Kling API at.`,
		);
		expectNoPage(result);
	});

	it('Get Task answered by HTML 502 pages: retried, then an error naming host and status, no HTML', async () => {
		const taskId = await seedTask();
		sim.addFault(htmlAnswer('query', 502, 20));
		const result = await withFastBackoff(async () => await run({ operation: 'getTask', taskId }));
		expect(sim.apiRequests('query').length).toBeGreaterThan(1);
		const failed = errorOf(result.output[0][0]);
		expect(failed.error).toBe(`CometAPI could not query task ${taskId}: not an API answer from ${host()} (HTTP 502, an HTML page) [item 0]`);
		expect(failed.description).toMatch(/^Something other than CometAPI's API answered \(a proxy, a gateway or a web server\)/);
		expectNoPage(result);
	});

	it('Get Task answered by an HTML 404 page: one query, an error naming host and status', async () => {
		const taskId = await seedTask();
		sim.addFault(htmlAnswer('query', 404));
		const result = await run({ operation: 'getTask', taskId });
		expect(sim.apiRequests('query')).toHaveLength(1);
		expect(errorOf(result.output[0][0]).error).toBe(
			`CometAPI could not query task ${taskId}: not an API answer from ${host()} (HTTP 404, an HTML page) [item 0]`,
		);
		expectNoPage(result);
	});

	it('a plain-text answer is not an API answer either, and is not shown', async () => {
		const taskId = await seedTask();
		sim.addFault({ route: 'query', type: 'status', status: 404, body: 'proxy-page-marker: no route' });
		const result = await run({ operation: 'getTask', taskId });
		expect(errorOf(result.output[0][0]).error).toContain(`not an API answer from ${host()} (HTTP 404, a text/plain body)`);
		expectNoPage(result);
	});

	it('a JSON 404 that is not "task_not_exist" also says what to change in the Base URL', async () => {
		const taskId = await seedTask();
		sim.addFault({ route: 'query', type: 'status', status: 404, body: { detail: 'Not Found' } });
		const result = await run({ operation: 'getTask', taskId });
		expect(errorOf(result.output[0][0]).description).toContain(
			'Change the Base URL in the CometAPI credential to https://api.cometapi.com',
		);
		// The API's own "task_not_exist" (HTTP 404 in the simulator) keeps its own hint.
		const unknown = await run({ operation: 'getTask', taskId: 'no-such-task' });
		expect(errorOf(unknown.output[0][0]).description).toBe('The task ID is unknown, expired or belongs to another account.');
	});
});

// ---------------------------------------------------------------------------------------------

describe('the Base URL users paste', () => {
	it.each(['/v1', '/v1/'])('Create and wait with a Base URL ending in %s reaches the Kling paths at the root', async (suffix) => {
		const { output, error } = await run(createAndWait(), `${sim.apiUrl}${suffix}`);
		expect(error).toBeUndefined();
		const [create] = sim.apiRequests('create');
		expect(create.path).toBe(CREATE_PATH);
		expect(sim.apiRequests('query').map((query) => query.path)).toContain(`${CREATE_PATH}/${create.taskId}`);
		expect(sim.apiRequests('other')).toEqual([]);
		await expectImagesOf(output[0]);
	});

	it('Get Task and Wait for Completion with a Base URL ending in /v1', async () => {
		const taskId = await seedTask();
		const got = await run({ operation: 'getTask', taskId }, `${sim.apiUrl}/v1`);
		expect(got.output[0][0].json).toMatchObject({ task_id: taskId, status: 'succeed' });
		const waited = await run({ operation: 'waitForCompletion', options: QUICK }, `${sim.apiUrl}/v1/`, [{ json: { task_id: taskId } }]);
		expect(waited.output[0]).toHaveLength(2);
		expect(waited.output[0][0].binary?.data).toBeDefined();
		expect(sim.apiRequests().map((request) => request.path)).toEqual([`${CREATE_PATH}/${taskId}`, `${CREATE_PATH}/${taskId}`]);
	});

	it('a Base URL with another path: the 404 page of the real host, and the error names the Base URL to use', async () => {
		const taskId = await seedTask();
		const result = await run({ operation: 'waitForCompletion', options: QUICK }, `${sim.apiUrl}/api/`, [{ json: { task_id: taskId } }]);
		// The simulator answers a path it does not serve like a web host: HTTP 404 with an HTML page.
		expect(sim.apiRequests().map((request) => `${request.route} ${request.path} ${request.status}`)).toEqual([
			`other /api${CREATE_PATH}/${taskId} 404`,
		]);
		const failed = errorOf(result.output[0][0]);
		expect(failed.error).toContain(`not an API answer from ${host()} (HTTP 404, an HTML page)`);
		expect(failed.description).toBe(
			`The Base URL ${sim.apiUrl}/api does not lead to CometAPI's Kling API: its paths (${CREATE_PATH}) are at the host's root. Change the Base URL in the CometAPI credential to ${sim.apiUrl}.`,
		);
		expectNoPage(result);
	});
});

describe('a redirect (a wrong scheme or path) is not followed, and says which Base URL it implies', () => {
	it('a query redirected from http to https on the same API path: the Base URL to use, without credentials or query', async () => {
		const taskId = await seedTask();
		const location = `https://someone:pw-8812@${host()}/kling/v1/images/omni-image/${taskId}?sig=query-sig-3390`;
		sim.addFault({ route: 'query', type: 'redirect', status: 301, location });
		const result = await run({ operation: 'getTask', taskId });
		expect(sim.apiRequests('query')).toHaveLength(1);
		const failed = errorOf(result.output[0][0]);
		expect(failed.error).toBe(`CometAPI answered the query of task ${taskId} with a redirect (HTTP 301) to ${host()}, which was not followed [item 0]`);
		expect(failed.description).toContain(`If you trust ${host()}, change the Base URL in the CometAPI credential to https://${host()}.`);
		expect(everythingVisible(result)).not.toMatch(/pw-8812|query-sig-3390|someone/);
	});

	it('a create redirected to a prefixed path: the prefix is part of the Base URL to use; not sent again', async () => {
		sim.addFault({ route: 'create', type: 'redirect', status: 308, location: `/gateway${CREATE_PATH}` });
		const result = await run(createAndWait({ waitForCompletion: false }));
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect(errorOf(result.output[0][0]).description).toContain(`change the Base URL in the CometAPI credential to ${sim.apiUrl}/gateway.`);
	});

	it('a redirect to an unrelated page (a login) gives no Base URL to use', async () => {
		const taskId = await seedTask();
		sim.addFault({ route: 'query', type: 'redirect', status: 302, location: '/login?next=%2F' });
		const result = await run({ operation: 'getTask', taskId });
		expect(errorOf(result.output[0][0]).description).toContain('if you trust the address the redirect names, use it as the Base URL');
	});
});

// ---------------------------------------------------------------------------------------------

describe('Base URLs with credentials or tokens in them never show them', () => {
	const SECRETS = ['kling-proxy-user', 'base-url-pass-5521', 'query-token-7731', 'frag-secret-4419'];

	function withSecrets(base: string, path = '/v1'): string {
		const url = new URL(base);
		return `${url.protocol}//kling-proxy-user:base-url-pass-5521@${url.host}${path}?token=query-token-7731#frag-secret-4419`;
	}

	function expectNoSecrets(result: Awaited<ReturnType<typeof run>>): void {
		const visible = everythingVisible(result);
		for (const secret of SECRETS) expect(visible).not.toContain(secret);
	}

	it('a wrong-path error shows scheme, host, port and path only', async () => {
		const taskId = await seedTask();
		const result = await run({ operation: 'getTask', taskId }, withSecrets(sim.apiUrl));
		const failed = errorOf(result.output[0][0]);
		expect(failed.error).toContain(`not an API answer from ${host()} (HTTP 404, an HTML page)`);
		expect(failed.description).toContain(`The Base URL ${sim.apiUrl}/v1 does not lead to CometAPI's Kling API`);
		expect(failed.description).toContain(`Change the Base URL in the CometAPI credential to ${sim.apiUrl}.`);
		expectNoSecrets(result);
	});

	it('a create that may exist names the host only (user info alone still reaches the API)', async () => {
		sim.addFault(htmlAnswer('create', 502));
		const url = new URL(sim.apiUrl);
		const result = await run(createAndWait({ waitForCompletion: false }), `http://kling-proxy-user:base-url-pass-5521@${url.host}`);
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect(errorOf(result.output[0][0]).error).toContain(`(not an API answer from ${host()} (HTTP 502, an HTML page)): the task may have been created`);
		expectNoSecrets(result);
	});

	it('an unreachable Base URL is shown without them', async () => {
		const port = await closedPort();
		const result = await withFastBackoff(
			async () => await run({ operation: 'getTask', taskId: 'task-1' }, withSecrets(`http://127.0.0.1:${port}`, '/proxy')),
		);
		expect(errorOf(result.output[0][0]).error).toMatch(
			new RegExp(`^Could not reach CometAPI at http://127\\.0\\.0\\.1:${port}/proxy to query task task-1: connection failed`),
		);
		expectNoSecrets(result);
	});

	it('without Continue On Fail the thrown error shows none of them either', async () => {
		const port = await closedPort();
		const result = await withFastBackoff(
			async () =>
				await runKling(sim, createParams({ waitForCompletion: false }), {
					credentials: { apiKey: API_KEY, baseUrl: withSecrets(`http://127.0.0.1:${port}`) },
				}),
		);
		expect(result.error).toBeDefined();
		expect((result.error as Error).message).toContain(`Could not reach CometAPI at http://127.0.0.1:${port}/v1 to create the image task`);
		expectNoSecrets(result);
	});
});

describe('a Base URL that is no web address', () => {
	it.each(['api.cometapi.com', 'http//api.cometapi.com', 'ftp://api.cometapi.com'])(
		'"%s": a create is refused before sending, not reported as maybe charged',
		async (baseUrl) => {
			const result = await withFastBackoff(async () => await run(createAndWait({ waitForCompletion: false }), baseUrl));
			const failed = errorOf(result.output[0][0]);
			expect(failed.error).toBe(
				'The Base URL in the CometAPI credential is not an http(s) address, so CometAPI could not create the image task; nothing was sent [item 0]',
			);
			expect(failed.error).not.toMatch(/may have been created/);
			expect(failed.description).toBe('Set the Base URL to a full address starting with https://, for CometAPI https://api.cometapi.com.');
		},
	);
});

/** A port nothing listens on: bound, then closed again. */
async function closedPort(): Promise<number> {
	const server: Server = createServer();
	await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
	const { port } = server.address() as AddressInfo;
	await new Promise((resolve) => server.close(resolve));
	return port;
}
