/**
 * Odd and hostile answers: answers the contract allows or a network produces must end
 * in a result or a clear error, never in a hang, a silent empty success, or the API key sent to
 * another host.
 */
import { createServer, type Server } from 'node:http';

import type { IDataObject, INodeExecutionData } from 'n8n-workflow';

import { createReferenceJpeg, createReferencePng, startEchoServer, type EchoServer, type Simulator } from '../simulator';
import {
	API_KEY,
	createParams,
	errorMessage,
	everythingVisible,
	runKling,
	startSim,
	withFastBackoff,
} from './support/kling';
import { closeServer, listenOnLoopback } from './support/net';
import { createTask, SEED, seededTaskPlan, seedTasks } from './support/simulator-http';
import { sleep } from './support/wait';

let sim: Simulator;
let echo: EchoServer;
beforeAll(async () => {
	sim = await startSim({ taskPlan: seededTaskPlan });
	echo = await startEchoServer();
});
afterEach(() => {
	sim.reset();
	echo.clear();
	echo.respondWith(undefined);
});
afterAll(async () => {
	await sim.close();
	await echo.close();
});

type Json = Record<string, unknown>;

const QUICK = { pollInterval: 1, maxWaitTime: 10 };

async function waitFor(taskIds: unknown[], options: Json = {}, continueOnFail = true) {
	return await runKling(
		sim,
		{ operation: 'waitForCompletion', options: { ...QUICK, ...options } },
		{ inputItems: taskIds.map((task_id) => ({ json: { task_id } as IDataObject })), continueOnFail },
	);
}

/** The next query is answered HTTP 200 with this task as `data`, whatever task was asked. */
function answerQueryWith(data: Json, times = 1): void {
	sim.addFault({ route: 'query', type: 'status', status: 200, times, body: { code: 0, message: 'SUCCEED', request_id: 'r-1', data } });
}

function succeeded(taskId: string, images: unknown[] | undefined): Json {
	return {
		task_id: taskId,
		task_status: 'succeed',
		created_at: Date.now(),
		updated_at: Date.now(),
		...(images === undefined ? {} : { task_result: { result_type: 'single', images } }),
	};
}

function errorOf(item: INodeExecutionData): { error: string; description?: string } {
	expect(item.json).toHaveProperty('error');
	return item.json as { error: string; description?: string };
}

async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
	const started = Date.now();
	const result = await run();
	return { result, ms: Date.now() - started };
}

/** A loopback image host with a few hostile answers, recording the Authorization header it gets. */
let imageHost: Server;
let imageBase = '';
const imageHostAuth: string[] = [];
const png = createReferencePng(320, 320);
const jpeg = createReferenceJpeg(320, 320);
beforeAll(async () => {
	imageHost = createServer((request, response) => {
		imageHostAuth.push(String(request.headers.authorization ?? 'none'));
		if (request.url === '/picture.svg') {
			response.writeHead(200, { 'content-type': 'image/svg+xml' });
			response.end('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>');
		} else if (request.url === '/jpeg-called.png') {
			response.writeHead(200, { 'content-type': 'image/png' });
			response.end(jpeg);
		} else {
			response.writeHead(200, { 'content-type': 'image/png' });
			response.end(png);
		}
	});
	imageBase = await listenOnLoopback(imageHost);
});
beforeEach(() => {
	imageHostAuth.length = 0;
});
afterAll(async () => {
	await closeServer(imageHost);
});

// ---------------------------------------------------------------------------------------------

describe('two items with the same task id', () => {
	it('Wait for Completion on the same task id twice: both items get the result and the run ends', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		const { result, ms } = await timed(async () => await waitFor([taskId, taskId], {}, false));
		expect(result.error).toBeUndefined();
		expect(result.output[0].map((item) => [item.json.task_id, item.pairedItem])).toEqual([
			[taskId, { item: 0 }],
			[taskId, { item: 1 }],
		]);
		expect(result.output[0].every((item) => item.binary?.data)).toBe(true);
		expect(sim.apiRequests('query')).toHaveLength(1);
		expect(ms).toBeLessThan(10_000);
	}, 20_000);

	it('Create answered with one task id for two creates: both items get the result and the run ends', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		const created = { code: 0, message: 'SUCCEED', data: { task_id: taskId, task_status: 'submitted' } };
		sim.addFault({ route: 'create', type: 'status', status: 200, body: created, times: 2 });
		const { result, ms } = await timed(
			async () =>
				await runKling(sim, createParams({ options: QUICK }), { inputItems: [{ json: {} }, { json: {} }] }),
		);
		expect(result.error).toBeUndefined();
		expect(result.output[0].map((item) => [item.json.task_id, item.pairedItem])).toEqual([
			[taskId, { item: 0 }],
			[taskId, { item: 1 }],
		]);
		expect(sim.apiRequests('create')).toHaveLength(2);
		expect(ms).toBeLessThan(10_000);
	}, 20_000);

	it('the same task id twice, stopped while waiting: both items end with "Stopped waiting"', async () => {
		const slow = await startSim({ taskDurationMs: 60_000 });
		try {
			const taskId: string = (await createTask(slow, { prompt: 'slow' })).json.data.task_id;
			const controller = new AbortController();
			const running = runKling(
				slow,
				{ operation: 'waitForCompletion', options: { pollInterval: 30, maxWaitTime: 600 } },
				{ inputItems: [{ json: { task_id: taskId } }, { json: { task_id: taskId } }], continueOnFail: true, abortSignal: controller.signal },
			);
			while (slow.apiRequests('query').length === 0) await sleep(20);
			const stoppedAt = Date.now();
			controller.abort();
			const { output } = await running;
			expect(Date.now() - stoppedAt).toBeLessThan(3000);
			expect(output[0].map((item) => errorOf(item).error)).toEqual([
				`Stopped waiting for task ${taskId} [item 0]`,
				`Stopped waiting for task ${taskId} [item 1]`,
			]);
		} finally {
			await slow.close();
		}
	}, 20_000);
});

describe('redirects never carry the API key to another host', () => {
	function expectNothingAtEcho(result: Awaited<ReturnType<typeof runKling>>): void {
		expect(echo.requests).toHaveLength(0);
		expect(everythingVisible(result)).not.toContain(API_KEY);
	}

	it('a query answered 302 to another host: refused with an error naming that host, the key stays home', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'query', type: 'redirect', status: 302, location: `${echo.url}/steal?task=${taskId}` });
		const { result, ms } = await timed(async () => await runKling(sim, { operation: 'getTask', taskId }));
		expect(errorMessage(result.error)).toBe(
			`CometAPI answered the query of task ${taskId} with a redirect (HTTP 302) to ${echo.host}:${echo.port}, which was not followed [item 0]`,
		);
		expect((result.error as { description?: string }).description).toMatch(/Base URL/);
		await sleep(300);
		expectNothingAtEcho(result);
		expect(sim.apiRequests('query')).toHaveLength(1);
		expect(ms).toBeLessThan(5000);
	});

	it('a query redirected during Wait for Completion fails at once, not at Max Wait Time', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'query', type: 'redirect', status: 301, location: `${echo.url}/moved` });
		const { result, ms } = await timed(async () => await waitFor([taskId], { maxWaitTime: 30 }));
		expect(errorOf(result.output[0][0]).error).toMatch(/redirect \(HTTP 301\) to 127\.0\.0\.3:\d+, which was not followed \[item 0\]$/);
		expectNothingAtEcho(result);
		expect(ms).toBeLessThan(5000);
	});

	it('a create answered 307 to another host: neither the key nor the body goes there, and the create is not re-sent', async () => {
		sim.addFault({ route: 'create', type: 'redirect', status: 307, location: `${echo.url}/kling/v1/images/omni-image` });
		const result = await runKling(sim, createParams({ waitForCompletion: false, additionalFields: { generateExternalTaskId: true } }));
		expect(errorMessage(result.error)).toMatch(
			/^CometAPI answered the create request with a redirect \(HTTP 307\) to 127\.0\.0\.3:\d+, which was not followed \[item 0\]$/,
		);
		await sleep(300);
		expectNothingAtEcho(result);
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect(sim.tasks.size).toBe(0);
	});

	it('a redirect to a URL with credentials in it names the host only', async () => {
		sim.addFault({ route: 'create', type: 'redirect', status: 302, location: `http://user:secret@${echo.host}:${echo.port}/x` });
		const result = await runKling(sim, createParams({ waitForCompletion: false }));
		expect(errorMessage(result.error)).toContain(`to ${echo.host}:${echo.port},`);
		expect(everythingVisible(result)).not.toContain('secret');
		expectNothingAtEcho(result);
	});

	it('image downloads still follow a redirect to another host, without credentials', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'image', type: 'redirect', status: 302, location: `${imageBase}/moved.png` });
		const { output, error } = await runKling(sim, { operation: 'getTask', taskId, downloadImages: true });
		expect(error).toBeUndefined();
		expect(output[0][0].binary!.data.mimeType).toBe('image/png');
		expect(imageHostAuth).toEqual(['none']);
	});
});

describe('Request Timeout bounds the whole request, body included', () => {
	it('an image host that trickles one byte every 200 ms is cut off at the timeout, and the retry gets the image', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'image', type: 'trickle', intervalMs: 200 });
		const { result, ms } = await timed(
			async () => await withFastBackoff(async () => await runKling(sim, { operation: 'getTask', taskId, downloadImages: true, options: { requestTimeout: 2 } })),
		);
		expect(result.error).toBeUndefined();
		expect(sim.imageRequests()).toHaveLength(2);
		expect(ms).toBeLessThan(6000);
	}, 30_000);

	it('an image host that trickles on every attempt ends in a timeout error, not a hang', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'image', type: 'trickle', intervalMs: 200, times: 10 });
		const { result, ms } = await timed(
			async () => await withFastBackoff(async () => await runKling(sim, { operation: 'getTask', taskId, downloadImages: true, options: { requestTimeout: 1 } })),
		);
		expect(errorMessage(result.error)).toBe(
			`Could not download image 0 of task ${taskId}: no answer before the request timeout [item 0]`,
		);
		expect(sim.imageRequests()).toHaveLength(5);
		expect(ms).toBeLessThan(9000);
	}, 30_000);

	it('a query answer that trickles spaces is cut off at the timeout and retried', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'query', type: 'trickle', intervalMs: 200 });
		const { result, ms } = await timed(
			async () => await withFastBackoff(async () => await runKling(sim, { operation: 'getTask', taskId, options: { requestTimeout: 2 } })),
		);
		expect(result.error).toBeUndefined();
		expect(result.output[0][0].json.status).toBe('succeed');
		expect(sim.apiRequests('query')).toHaveLength(2);
		expect(ms).toBeLessThan(6000);
	}, 30_000);

	it('a create answer that trickles spaces ends at the timeout: the task may exist, not sent again', async () => {
		sim.addFault({ route: 'create', type: 'trickle', intervalMs: 200 });
		const { result, ms } = await timed(
			async () =>
				await runKling(sim, createParams({ waitForCompletion: false, additionalFields: { generateExternalTaskId: true }, options: { requestTimeout: 2 } })),
		);
		expect(errorMessage(result.error)).toBe(
			'The create request got no usable answer (no answer before the request timeout): the task may have been created and charged [item 0]',
		);
		expect(sim.apiRequests('create')).toHaveLength(1);
		expect(ms).toBeLessThan(5000);
	}, 30_000);

	it('a long Retry-After on queries does not keep Wait for Completion past Max Wait Time', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'query', type: 'status', status: 503, headers: { 'Retry-After': '100' }, times: 50 });
		const { result, ms } = await timed(async () => await waitFor([taskId], { maxWaitTime: 3 }));
		expect(errorOf(result.output[0][0]).error).toBe(`Task ${taskId} is not finished after waiting 3 s [item 0]`);
		expect(ms).toBeLessThan(3000 + 2000);
	}, 30_000);

	it('a 429 with a long Retry-After on queries does not either', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'query', type: 'status', status: 429, headers: { 'Retry-After': '100' }, times: 50 });
		const { result, ms } = await timed(async () => await waitFor([taskId], { maxWaitTime: 3 }));
		expect(errorOf(result.output[0][0]).error).toBe(`Task ${taskId} is not finished after waiting 3 s [item 0]`);
		expect(ms).toBeLessThan(3000 + 2000);
	}, 30_000);

	it.each([2_200_000, 3601])('Request Timeout %d s is refused before anything is sent', async (seconds) => {
		const result = await runKling(sim, createParams({ options: { requestTimeout: seconds } }));
		expect(errorMessage(result.error)).toBe(`Option "Request Timeout" must be at most 3600 seconds, got "${seconds}"`);
		expect(sim.requests).toHaveLength(0);
	});

	it('Poll Interval past Node’s timer range is refused too (it would poll without pause)', async () => {
		const result = await waitFor(['T1'], { pollInterval: 2_200_000 });
		expect(errorMessage(result.error)).toBe('Option "Poll Interval" must be at most 3600 seconds, got "2200000"');
		expect(sim.requests).toHaveLength(0);
	});
});

describe('a task that succeeds without images is an error naming the task', () => {
	const empty: Array<{ name: string; images: unknown[] | undefined }> = [
		{ name: 'task_result missing', images: undefined },
		{ name: 'images empty', images: [] },
		{ name: 'every url missing', images: [{ index: 0 }, { index: 1, url: '' }] },
	];

	it.each(empty)('$name: Wait for Completion says the task was charged', async ({ images }) => {
		answerQueryWith(succeeded('T-empty', images));
		const { output } = await waitFor(['T-empty']);
		const failed = errorOf(output[0][0]);
		expect(failed.error).toBe('Task T-empty succeeded but CometAPI sent no image URL [item 0]');
		expect(failed.description).toMatch(/charged/);
	});

	it('Get Task with Download Images says the same', async () => {
		answerQueryWith(succeeded('T-empty', []));
		const { error } = await runKling(sim, { operation: 'getTask', taskId: 'T-empty', downloadImages: true });
		expect(errorMessage(error)).toBe('Task T-empty succeeded but CometAPI sent no image URL [item 0]');
	});

	it('an image without a url among others is reported, naming it', async () => {
		answerQueryWith(succeeded('T-gap', [{ index: 0, url: `${imageBase}/a.png` }, { index: 1 }]));
		const { output } = await waitFor(['T-gap']);
		const failed = errorOf(output[0][0]);
		expect(failed.error).toBe('Task T-gap succeeded but CometAPI sent no URL for image 1 [item 0]');
		expect(failed.description).toMatch(/charged/);
	});

	it('Get Task without downloads still lists the image without a url, so the gap is visible', async () => {
		answerQueryWith(succeeded('T-gap', [{ index: 0, url: `${imageBase}/a.png` }, { index: 1 }]));
		const { output, error } = await runKling(sim, { operation: 'getTask', taskId: 'T-gap' });
		expect(error).toBeUndefined();
		expect(output[0][0].json.images).toEqual([
			{ index: 0, url: `${imageBase}/a.png`, watermark_url: null },
			{ index: 1, url: null, watermark_url: null },
		]);
	});
});

describe('answers about another task', () => {
	it('a query answered with another task id is refused; that task’s image is not downloaded', async () => {
		const [asked, other] = await seedTasks(sim, [SEED, SEED]);
		answerQueryWith(succeeded(other, [{ index: 0, url: `${imageBase}/other.png` }]));
		const { output } = await waitFor([asked]);
		expect(errorOf(output[0][0]).error).toBe(
			`CometAPI answered the query of task ${asked} with task ${other}: refused [item 0]`,
		);
		expect(imageHostAuth).toHaveLength(0);
		expect(sim.imageRequests()).toHaveLength(0);
	});
});

describe('statuses outside the contract', () => {
	it('"SUCCEED" in capitals is a success: the images are downloaded', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		answerQueryWith({ ...succeeded(taskId, [{ index: 0, url: `${imageBase}/a.png` }]), task_status: 'SUCCEED' }, 20);
		const { result, ms } = await timed(async () => await waitFor([taskId]));
		expect(result.output[0][0].json.status).toBe('succeed');
		expect(sim.apiRequests('query')).toHaveLength(1);
		expect(result.output[0][0].binary?.data.mimeType).toBe('image/png');
		expect(ms).toBeLessThan(5000);
	});

	it('"canceled" is final: a failed task at once, not a wait until Max Wait Time', async () => {
		answerQueryWith({ task_id: 'T-c', task_status: 'canceled' }, 20);
		const { result, ms } = await timed(async () => await waitFor(['T-c']));
		expect(errorOf(result.output[0][0]).error).toBe('Kling task T-c failed: CometAPI reported the task as "canceled" [item 0]');
		expect(ms).toBeLessThan(5000);
	});

	// The poller counts answers with a status it does not know (hasUnknownStatus) and gives up on the second in a row.
	it.each([
		{ name: 'an unknown word', status: 'mystery' },
		{ name: 'no status', status: undefined },
	])('$name: fails fast with a clear message', async ({ status }) => {
		answerQueryWith({ task_id: 'T-u', task_status: status }, 20);
		const { result, ms } = await timed(async () => await waitFor(['T-u'], { maxWaitTime: 8 }));
		expect(errorOf(result.output[0][0]).error).toMatch(/^Task T-u has a status this node does not know/);
		expect(ms).toBeLessThan(5000);
	}, 20_000);
});

describe('image URLs and image types', () => {
	it.each([
		{ url: 'file:///etc/passwd', problem: 'its scheme is "file:", not http or https' },
		{ url: 'ftp://example.com/a.png', problem: 'its scheme is "ftp:", not http or https' },
		{ url: '/images/0.png', problem: 'it is not an absolute http(s) URL' },
		{ url: 'not a url', problem: 'it is not an absolute http(s) URL' },
	])('$url is refused at once, naming why', async ({ url, problem }) => {
		answerQueryWith(succeeded('T-url', [{ index: 0, url }]));
		const { result, ms } = await timed(async () => await waitFor(['T-url']));
		expect(errorOf(result.output[0][0]).error).toBe(`Could not download image 0 of task T-url: ${problem} [item 0]`);
		expect(ms).toBeLessThan(3000);
	});

	it('an SVG (with a script in it) is refused: raster images only', async () => {
		answerQueryWith(succeeded('T-svg', [{ index: 0, url: `${imageBase}/picture.svg` }]));
		const { output } = await waitFor(['T-svg']);
		expect(errorOf(output[0][0]).error).toBe(
			'Could not download image 0 of task T-svg: the body is not a PNG, JPEG, WebP or GIF image (declared as "image/svg+xml") [item 0]',
		);
	});

	it('a JPEG served as image/png is stored and named as a JPEG', async () => {
		answerQueryWith(succeeded('T-jpg', [{ index: 0, url: `${imageBase}/jpeg-called.png` }]));
		const { output } = await waitFor(['T-jpg']);
		expect(output[0][0].binary!.data).toMatchObject({ mimeType: 'image/jpeg', fileName: 'kling-T-jpg-0.jpg' });
	});

	it('duplicate image indexes still give unique file names', async () => {
		answerQueryWith(
			succeeded('T-dup', [
				{ index: 0, url: `${imageBase}/a.png` },
				{ index: 0, url: `${imageBase}/b.png` },
				{ index: 1, url: `${imageBase}/c.png` },
			]),
		);
		const { output } = await waitFor(['T-dup']);
		const names = output[0].map((item) => item.binary?.data.fileName);
		expect(names).toHaveLength(3);
		expect(new Set(names).size).toBe(3);
		expect(names[0]).toBe('kling-T-dup-0.png');
	});
});

describe('provider texts that contain the API key are redacted', () => {
	it('in an error answer', async () => {
		sim.addFault({ route: 'query', type: 'code', code: 1301, message: `Key ${API_KEY} is not allowed here` });
		const result = await runKling(sim, { operation: 'getTask', taskId: 'T-k' });
		expect(errorMessage(result.error)).toContain('Key [redacted] is not allowed here');
		expect(everythingVisible(result)).not.toContain(API_KEY);
	});

	it('in a failed task’s reason', async () => {
		answerQueryWith({ task_id: 'T-k', task_status: 'failed', task_status_msg: `Bad key ${API_KEY}` });
		const result = await waitFor(['T-k']);
		expect(errorOf(result.output[0][0]).error).toBe('Kling task T-k failed: Bad key [redacted] [item 0]');
		expect(everythingVisible(result)).not.toContain(API_KEY);
	});
});

describe('input that would query or pay for the wrong thing', () => {
	it('a numeric task id past the safe integer range is refused: keep ids as text', async () => {
		const result = await runKling(sim, { operation: 'getTask', taskId: '={{ 874512093471236096 }}' });
		expect(errorMessage(result.error)).toBe(
			'Task ID 874512093471236100 arrived as a number too large to be exact; the real ID may differ [item 0]',
		);
		expect((result.error as { description?: string }).description).toMatch(/text/);
		expect(sim.requests).toHaveLength(0);
	});

	it('a small numeric task id is fine', async () => {
		answerQueryWith({ task_id: '12345', task_status: 'processing' });
		const { output, error } = await runKling(sim, { operation: 'getTask', taskId: '={{ 12345 }}' });
		expect(error).toBeUndefined();
		expect(output[0][0].json.task_id).toBe('12345');
	});

	it('a prompt of only zero-width characters is empty: nothing is sent', async () => {
		const result = await runKling(sim, createParams({ prompt: '\u200B\u200C\u200D\u2060\uFEFF ' }));
		expect(errorMessage(result.error)).toBe('Prompt is empty [item 0]');
		expect(sim.requests).toHaveLength(0);
	});

	// Create Omni Image reads the switch with readSwitch(): anything but true or false is an error.
	it('Wait for Completion resolving to nothing is an error, not a silent "do not wait"', async () => {
		const result = await runKling(sim, createParams({ waitForCompletion: '={{ $json.nothing }}' }));
		expect(errorMessage(result.error)).toMatch(/^"Wait for Completion" must be true or false/);
		expect(sim.requests).toHaveLength(0);
	});
});

describe('stopping a run during queued creates', () => {
	it('lists every create that may have reached the API', async () => {
		sim.addFault({ route: 'create', type: 'delay', ms: 30_000, times: 3 });
		const controller = new AbortController();
		const running = runKling(
			sim,
			createParams({ prompt: '={{ $json.prompt }}', options: { ...QUICK, maxConcurrentRequests: 2 }, additionalFields: { generateExternalTaskId: true } }),
			{ inputItems: [0, 1, 2].map((n) => ({ json: { prompt: `item ${n}` } })), abortSignal: controller.signal },
		);
		while (sim.apiRequests('create').length < 2) await sleep(20);
		await sleep(200);
		controller.abort();
		const { error } = await running;
		const text = `${errorMessage(error)} ${(error as { description?: string }).description ?? ''}`;
		for (const request of sim.apiRequests('create')) {
			expect(text).toContain(request.body.external_task_id as string);
		}
	}, 20_000);
});
