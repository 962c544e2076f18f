/**
 * Faults of the image download: retried when another try can succeed (then the exact image), otherwise a
 * clear error naming the task, the image and the item, with a way to get the images later; nothing is
 * created again; with "Continue On Fail" the other items still complete.
 *
 * Items run with "Max Concurrent Requests" 1, so the first queued fault always hits item 0.
 */
import { createServer, type Server } from 'node:http';

import { DEFAULT_RETRY_POLICY as RETRY } from '../nodes/shared/request/retry';
import { createReferencePng, type Fault, type Simulator } from '../simulator';
import { binaryToBuffer } from './harness';
import { errorJson, type Json, twoItemRuns } from './support/fault-runs';
import { API_KEY, errorMessage, runKling, startSim, withFastBackoff } from './support/kling';
import { closeServer, listenOnLoopback } from './support/net';
import { SEED, seededTaskPlan, seedTasks } from './support/simulator-http';

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim({ taskPlan: seededTaskPlan });
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

const { waitForTwo, imageRequestsOf, expectImageItem } = twoItemRuns(() => sim);

describe('image download faults', () => {
	const retried: Array<{ name: string; fault: Fault; options?: Json }> = [
		{ name: 'connection dropped with no answer', fault: { route: 'image', type: 'drop' } },
		{ name: 'connection dropped mid-body', fault: { route: 'image', type: 'dropMidBody' } },
		{ name: 'truncated image body', fault: { route: 'image', type: 'truncate' } },
		{ name: 'truncated in the first bytes', fault: { route: 'image', type: 'truncate', bytes: 5 } },
		{ name: 'answer slower than the request timeout', fault: { route: 'image', type: 'delay', ms: 2500 }, options: { requestTimeout: 1 } },
		{ name: 'HTTP 503 (Retry-After: 0)', fault: { route: 'image', type: 'status', status: 503, headers: { 'Retry-After': '0' } } },
		{ name: 'HTTP 429 (Retry-After: 0)', fault: { route: 'image', type: 'status', status: 429, headers: { 'Retry-After': '0' } } },
	];

	it.each(retried)('$name: retried, then the exact image', async ({ fault, options }) => {
		const [faulted, other] = await seedTasks(sim, [SEED, SEED]);
		sim.addFault(fault);
		const { output, error } = await withFastBackoff(async () => await waitForTwo([faulted, other], options));
		expect(error).toBeUndefined();
		const hit = sim.imageRequests().find((request) => request.fault)!;
		expect(hit.fault).toBe(fault.type);
		expect(imageRequestsOf(hit.taskId!)).toHaveLength(2);
		const position = hit.taskId === faulted ? 0 : 1;
		await expectImageItem(output[0][position], hit.taskId!, position);
		await expectImageItem(output[0][1 - position], hit.taskId === faulted ? other : faulted, 1 - position);
		expect(sim.apiRequests('create')).toHaveLength(0);
	});

	const failing: Array<{ name: string; setup: (taskId: string) => void; options?: Json; reason: string; requests: number }> = [
		{
			name: 'image URL expired (404)',
			setup: (taskId) => sim.expireImages({ taskId, status: 404 }),
			reason: 'the image URL answered HTTP 404: it has probably expired',
			requests: 1,
		},
		{
			name: 'image URL expired (403)',
			setup: (taskId) => sim.expireImages({ taskId, status: 403 }),
			reason: 'the image URL answered HTTP 403: it has probably expired',
			requests: 1,
		},
		{
			name: 'image over the download size limit',
			setup: () => sim.addFault({ route: 'image', type: 'oversize', bytes: 2 * 1024 * 1024 }),
			options: { maxDownloadSizeMb: 1 },
			reason: 'the image is 2 MB, over the 1 MB download limit',
			requests: 1,
		},
		{
			name: 'non-image content type (text/html)',
			setup: () => sim.addFault({ route: 'image', type: 'contentType', contentType: 'text/html; charset=utf-8' }),
			reason: 'the server answered with "text/html", not an image',
			requests: 1,
		},
		{
			name: 'HTTP 200 with a JSON error body',
			setup: () => sim.addFault({ route: 'image', type: 'code', code: 403, message: 'denied' }),
			reason: 'the server answered with "application/json", not an image',
			requests: 1,
		},
		{
			name: 'image/png that is not an image',
			setup: () => sim.addFault({ route: 'image', type: 'malformed' }),
			reason: 'the body is not a valid image (declared as "image/png")',
			requests: 1,
		},
		{
			name: 'HTTP 503 on every attempt',
			setup: (taskId) => sim.expireImages({ taskId, status: 503 }),
			reason: 'the image server answered HTTP 503',
			requests: RETRY.maxAttempts,
		},
	];

	it.each(failing)('$name: a clear error naming task, image and item; the other item completes', async ({ setup, options, reason, requests }) => {
		const [faulted, other] = await seedTasks(sim, [SEED, SEED]);
		setup(faulted);
		const { output, error } = await withFastBackoff(async () => await waitForTwo([faulted, other], options));
		expect(error).toBeUndefined();
		const hitTask = sim.imageRequests().find((request) => request.fault || request.status !== 200)!.taskId!;
		const position = hitTask === faulted ? 0 : 1;
		expect(imageRequestsOf(hitTask)).toHaveLength(requests);
		const failed = errorJson(output[0][position]);
		expect(failed.error).toBe(`Could not download image 0 of task ${hitTask}: ${reason} [item ${position}]`);
		expect(failed.description).toContain(`Run "Get Task" with task ID ${hitTask}`);
		expect(failed.task_id).toBe(hitTask);
		await expectImageItem(output[0][1 - position], hitTask === faulted ? other : faulted, 1 - position);
		expect(sim.apiRequests('create')).toHaveLength(0);
	});

	it('Get Task with Download Images reports an expired URL the same way', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.expireImages({ taskId });
		const { error } = await runKling(sim, { operation: 'getTask', taskId, downloadImages: true });
		expect(errorMessage(error)).toBe(
			`Could not download image 0 of task ${taskId}: the image URL answered HTTP 404: it has probably expired [item 0]`,
		);
		expect(imageRequestsOf(taskId)).toHaveLength(1);
	});

	it('a generic binary content type is accepted when the bytes are an image', async () => {
		const [taskId] = await seedTasks(sim, [SEED]);
		sim.addFault({ route: 'image', type: 'contentType', contentType: 'application/octet-stream' });
		const { output, error } = await runKling(sim, { operation: 'getTask', taskId, downloadImages: true });
		expect(error).toBeUndefined();
		expect(output[0][0].binary!.data.mimeType).toBe('image/png');
		await expectImageItem(output[0][0], taskId, 0);
	});
});

describe('download faults the simulator cannot script (a local API + image host)', () => {
	let server: Server;
	let base = '';
	let mode: 'chunked' | 'stallOnce' = 'chunked';
	const imageRequests: string[] = [];
	const png = createReferencePng(300, 300);

	beforeAll(async () => {
		server = createServer((request, response) => {
			if (request.url?.startsWith('/kling/')) {
				const data = {
					task_id: 'local-1',
					task_status: 'succeed',
					task_result: { images: [{ index: 0, url: `${base}/image.png` }] },
				};
				response.writeHead(200, { 'content-type': 'application/json' });
				response.end(JSON.stringify({ code: 0, message: 'SUCCEED', data }));
				return;
			}
			imageRequests.push(String(request.headers.authorization ?? 'no authorization'));
			if (mode === 'stallOnce' && imageRequests.length === 1) {
				// Headers and the first bytes, then silence: the socket stays open.
				response.writeHead(200, { 'content-type': 'image/png', 'content-length': String(png.length) });
				response.write(png.subarray(0, 100));
				return;
			}
			if (mode === 'stallOnce') {
				response.writeHead(200, { 'content-type': 'image/png', 'content-length': String(png.length) });
				response.end(png);
				return;
			}
			// Streamed in chunks with no Content-Length, far past the limit.
			response.writeHead(200, { 'content-type': 'image/png', 'transfer-encoding': 'chunked' });
			response.write(png);
			const chunk = Buffer.alloc(256 * 1024);
			let sent = 0;
			const pump = () => {
				while (sent < 12 && !response.destroyed) {
					sent++;
					if (!response.write(chunk)) return void response.once('drain', pump);
				}
				response.end();
			};
			pump();
		});
		base = await listenOnLoopback(server);
	});
	beforeEach(() => {
		imageRequests.length = 0;
	});
	afterAll(async () => {
		await closeServer(server);
	});

	const getTask = async (options: Json) =>
		await runKling(
			sim,
			{ operation: 'getTask', taskId: 'local-1', downloadImages: true, options },
			{ credentials: { apiKey: API_KEY, baseUrl: base } },
		);

	it('no Content-Length: stops reading once the stream outgrows the size limit, and does not retry', async () => {
		mode = 'chunked';
		const { error } = await getTask({ maxDownloadSizeMb: 1 });
		expect(errorMessage(error)).toBe(
			'Could not download image 0 of task local-1: the image is larger than the 1 MB download limit [item 0]',
		);
		// The image host here is the API host itself: downloads still carry no key.
		expect(imageRequests).toEqual(['no authorization']);
	});

	it('a body that stalls half-way: the request timeout ends it, and the retry gets the image', async () => {
		mode = 'stallOnce';
		const { output, error } = await getTask({ requestTimeout: 1 });
		expect(error).toBeUndefined();
		expect(imageRequests).toHaveLength(2);
		expect(await binaryToBuffer(output[0][0].binary!.data)).toEqual(png);
	});
});
