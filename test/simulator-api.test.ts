// The simulator's API and image host, observed through real HTTP: a task's lifecycle on a real and on an
// injected clock, the images it serves, request validation and errors, and the scripted faults (status,
// drop, delay, malformed, redirect, trickle) a node test injects.
import * as http from 'node:http';
import {
	createReferenceJpeg,
	createReferencePng,
	readImageSize,
	startEchoServer,
	startSimulator,
	Simulator,
} from '../simulator';
import { authHeaders, CREATE_PATH, createTask, download, queryTask, raw } from './support/simulator-http';
import { sleep } from './support/wait';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('simulator', () => {
	let now = 1_800_000_000_000;
	let sim: Simulator;

	beforeAll(async () => {
		sim = await startSimulator({ taskDurationMs: 1000, clock: () => now });
	});
	afterAll(() => sim.close());
	beforeEach(() => sim.reset());

	/** Creates a task and moves the controlled clock past its end. */
	async function succeededTask(body: Record<string, unknown> = { prompt: 'a cat' }) {
		const { json } = await createTask(sim, body);
		now += 1000;
		const done = await queryTask(sim, json.data.task_id);
		expect(done.json.data.task_status).toBe('succeed');
		return done.json.data;
	}

	describe('lifecycle', () => {
		it('goes submitted → processing → succeed on a short real clock', async () => {
			const real = await startSimulator({ taskDurationMs: 200 });
			try {
				const created = await createTask(real, { prompt: 'a red fox', n: 2, external_task_id: 'ext-1' });
				expect(created.status).toBe(200);
				expect(created.json).toMatchObject({
					code: 0,
					message: 'SUCCEED',
					data: { task_status: 'submitted', task_info: { external_task_id: 'ext-1' } },
				});
				expect(typeof created.json.request_id).toBe('string');
				const id: string = created.json.data.task_id;
				expect(id).toMatch(/^sim-\d+-/);

				const seen: string[] = [];
				let data: any;
				for (let i = 0; i < 100; i++) {
					data = (await queryTask(real, id)).json.data;
					if (seen[seen.length - 1] !== data.task_status) seen.push(data.task_status);
					if (data.task_status === 'succeed') break;
					await sleep(20);
				}
				expect(['submitted', 'processing', 'succeed'].filter((s) => seen.includes(s))).toEqual(seen);
				expect(seen[seen.length - 1]).toBe('succeed');
				expect(data.final_unit_deduction).toBe('2');
				expect(data.task_result.images).toHaveLength(2);
				expect(data.task_result.images[0].url).toBe(`${real.imageUrl}/images/${id}/0.png`);
				expect(real.apiRequests('create')[0]).toMatchObject({ afterCreate: true, taskId: id, status: 200 });
			} finally {
				await real.close();
			}
		});

		it('derives status from the injected clock', async () => {
			const { json } = await createTask(sim, { prompt: 'x' });
			const id = json.data.task_id;
			expect(json.data.created_at).toBe(now);
			expect((await queryTask(sim, id)).json.data.task_status).toBe('submitted');
			now += 500;
			const processing = (await queryTask(sim, id)).json.data;
			expect(processing).toMatchObject({ task_status: 'processing', updated_at: json.data.created_at + 500 });
			expect(processing.task_result).toBeUndefined();
			now += 500;
			expect((await queryTask(sim, id)).json.data).toMatchObject({ task_status: 'succeed', task_status_msg: '' });
			expect(sim.taskStatus(id)).toBe('succeed');
		});

		it('serves series results with watermark variants, and failed tasks', async () => {
			const data = await succeededTask({
				prompt: 'p',
				result_type: 'series',
				watermark_info: { enabled: true },
				aspect_ratio: '16:9',
			});
			expect(data.task_result.result_type).toBe('series');
			expect(data.task_result.images).toHaveLength(4);
			const first = data.task_result.images[0];
			expect(first.watermark_url).toMatch(/\/0-wm\.png$/);
			const main = await download(first.url);
			const wm = await download(first.watermark_url);
			expect(main.bytes.equals(sim.expectedImageBytes(first.url))).toBe(true);
			expect(wm.bytes.equals(sim.expectedImageBytes(first.watermark_url))).toBe(true);
			expect(main.bytes.equals(wm.bytes)).toBe(false);
			expect(readImageSize(main.bytes)).toEqual({ format: 'png', width: 256, height: 144 });

			const failing = await startSimulator({
				taskDurationMs: 0,
				taskPlan: (_body, n) => (n === 1 ? { outcome: 'failed', failReason: 'content policy' } : undefined),
			});
			try {
				const { json } = await createTask(failing, { prompt: 'x' });
				const failed = (await queryTask(failing, json.data.task_id)).json.data;
				expect(failed).toMatchObject({ task_status: 'failed', task_status_msg: 'content policy' });
				expect(failed.task_result).toBeUndefined();
			} finally {
				await failing.close();
			}
		});

		it('failTask and expireImages', async () => {
			const data = await succeededTask();
			const url = data.task_result.images[0].url;
			sim.expireImages({ status: 403 });
			expect((await download(url)).status).toBe(403);
			sim.failTask(data.task_id, 'moderation');
			expect((await queryTask(sim, data.task_id)).json.data).toMatchObject({
				task_status: 'failed',
				task_status_msg: 'moderation',
			});
		});
	});

	describe('images', () => {
		it('serves exactly expectedImageBytes as valid PNG and JPEG', async () => {
			const png = await succeededTask({ prompt: 'p', n: 3, aspect_ratio: '2:3' });
			for (const img of png.task_result.images) {
				const got = await download(img.url);
				expect(got).toMatchObject({ status: 200, type: 'image/png' });
				expect(got.bytes.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
				expect(got.bytes.equals(sim.expectedImageBytes(img.url))).toBe(true);
				expect(readImageSize(got.bytes)).toEqual({ format: 'png', width: 171, height: 256 });
			}

			const jpegSim = await startSimulator({ taskDurationMs: 0, imageFormat: 'jpeg' });
			try {
				const { json } = await createTask(jpegSim, { prompt: 'p' });
				const url = (await queryTask(jpegSim, json.data.task_id)).json.data.task_result.images[0].url;
				expect(url).toMatch(/\/0\.jpg$/);
				const got = await download(url);
				expect(got.type).toBe('image/jpeg');
				expect(Number(got.bytes.length)).toBeGreaterThan(0);
				expect([got.bytes[0], got.bytes[1]]).toEqual([0xff, 0xd8]);
				expect([got.bytes[got.bytes.length - 2], got.bytes[got.bytes.length - 1]]).toEqual([0xff, 0xd9]);
				expect(readImageSize(got.bytes)).toEqual({ format: 'jpeg', width: 256, height: 256 });
				expect(got.bytes.equals(jpegSim.expectedImageBytes(url))).toBe(true);
			} finally {
				await jpegSim.close();
			}
		});

		it('answers 404 before the task succeeded and for unknown paths', async () => {
			const { json } = await createTask(sim, { prompt: 'p' });
			const url = `${sim.imageUrl}/images/${json.data.task_id}/0.png`;
			expect((await download(url)).status).toBe(404);
			now += 1000;
			expect((await download(url)).status).toBe(200);
			expect((await download(`${sim.imageUrl}/images/${json.data.task_id}/5.png`)).status).toBe(404);
			expect((await download(`${sim.imageUrl}/nope`)).status).toBe(404);
		});

		it('rejects an Authorization header on the image host', async () => {
			const data = await succeededTask();
			const res = await raw(data.task_result.images[0].url, { headers: { authorization: 'Bearer sim-key' } });
			expect(res.status).toBe(403);
			expect(sim.imageRequests().pop()).toMatchObject({ status: 403, rejectedAuthorization: true });
		});

		it('streams a 20 MB padded image', async () => {
			const big = await startSimulator({ taskDurationMs: 0, imageSizeBytes: 20 * 1024 * 1024 });
			try {
				const { json } = await createTask(big, { prompt: 'p' });
				const url = (await queryTask(big, json.data.task_id)).json.data.task_result.images[0].url;
				const res = await raw(url);
				expect(res.complete).toBe(true);
				expect(res.headers['content-length']).toBe(String(20 * 1024 * 1024));
				expect(res.body.length).toBe(20 * 1024 * 1024);
				expect(readImageSize(res.body)).toMatchObject({ format: 'png', width: 256 });
			} finally {
				await big.close();
			}
		});

		it('createReferencePng/Jpeg have the requested dimensions', () => {
			expect(readImageSize(createReferencePng(640, 480))).toEqual({ format: 'png', width: 640, height: 480 });
			expect(readImageSize(createReferenceJpeg(1000, 401))).toEqual({ format: 'jpeg', width: 1000, height: 401 });
			const padded = createReferencePng(300, 300, { padToBytes: 50_000 });
			expect(padded.length).toBe(50_000);
			expect(readImageSize(padded)).toEqual({ format: 'png', width: 300, height: 300 });
		});
	});

	describe('validation and errors', () => {
		const longPrompt = 'x'.repeat(2501);
		const cases: Array<[string, Record<string, unknown>, string]> = [
			['missing prompt', {}, 'prompt'],
			['long prompt', { prompt: longPrompt }, 'prompt'],
			['model', { prompt: 'p', model_name: 'kling-v9' }, 'model_name'],
			['image url', { prompt: 'p', image_list: [{ image: 'http://x/y.png' }] }, 'image_list[0].image'],
			['data: prefix', { prompt: 'p', image_list: [{ image: 'data:image/png;base64,AAAA' }] }, 'image_list[0].image'],
			[
				'too many refs',
				{ prompt: 'p', image_list: Array(6).fill({ image: 'https://x/y.png' }), element_list: Array(5).fill({ element_id: 1 }) },
				'element_list',
			],
			['resolution', { prompt: 'p', resolution: '8k' }, 'resolution'],
			['result_type', { prompt: 'p', result_type: 'many' }, 'result_type'],
			['n', { prompt: 'p', n: 10 }, 'n must'],
			['series_amount', { prompt: 'p', result_type: 'series', series_amount: 1 }, 'series_amount'],
			['aspect', { prompt: 'p', aspect_ratio: '5:4' }, 'aspect_ratio'],
			['watermark', { prompt: 'p', watermark_info: { enabled: 'yes' } }, 'watermark_info'],
			['callback', { prompt: 'p', callback_url: 'not a uri' }, 'callback_url'],
			['small base64 image', { prompt: 'p', image_list: [{ image: createReferencePng(200, 400).toString('base64') }] }, 'image_list[0].image'],
		];

		it.each(cases)('rejects %s with HTTP 400', async (_name, body, field) => {
			const res = await createTask(sim, body);
			expect(res.status).toBe(400);
			expect(res.json.code).not.toBe(0);
			expect(res.json.message).toContain(field);
			expect(sim.tasks.size).toBe(0);
		});

		it('accepts valid Base64 reference images and element ids', async () => {
			const image = createReferenceJpeg(600, 400).toString('base64');
			const res = await createTask(sim, {
				prompt: 'use <<<image_1>>>',
				model_name: 'kling-v3-omni',
				image_list: [{ image }, { image: 'https://example.com/a.png' }],
				element_list: [{ element_id: 123 }],
				resolution: '2k',
				aspect_ratio: '3:2',
				callback_url: 'https://example.com/hook',
			});
			expect(res.json.code).toBe(0);
		});

		it('rejects a duplicate external_task_id', async () => {
			expect((await createTask(sim, { prompt: 'p', external_task_id: 'dup' })).json.code).toBe(0);
			const again = await createTask(sim, { prompt: 'p', external_task_id: 'dup' });
			expect(again.status).toBe(400);
			expect(again.json.message).toContain('external_task_id');
		});

		it('rejects missing and wrong API keys', async () => {
			const wrong = await createTask(sim, { prompt: 'p' }, 'nope');
			expect(wrong).toMatchObject({ status: 401, json: { code: 401 } });
			const missing = await raw(sim.apiUrl + CREATE_PATH, { method: 'POST', body: '{"prompt":"p"}' });
			expect(missing.status).toBe(401);
			expect((await queryTask(sim, 'whatever', authHeaders(sim, 'nope'))).status).toBe(401);
			expect(sim.tasks.size).toBe(0);
		});

		it('answers task_not_exist and unknown routes', async () => {
			const res = await queryTask(sim, 'sim-0-unknown');
			expect(res).toMatchObject({ status: 404, json: { code: 1203, message: 'task_not_exist' } });
			expect((await raw(sim.apiUrl + '/v1/other')).status).toBe(404);
		});

		it('uses HTTP 200 with a non-zero code in code200 style', async () => {
			const s = await startSimulator({ errorStyle: 'code200' });
			try {
				const invalid = await createTask(s, { prompt: 'p', n: 0 });
				expect(invalid.status).toBe(200);
				expect(invalid.json.code).not.toBe(0);
				expect(invalid.json.message).toContain('n must');
				expect(await createTask(s, { prompt: 'p' }, 'bad')).toMatchObject({ status: 200, json: { code: 401 } });
				expect(await queryTask(s, 'none')).toMatchObject({ status: 200, json: { code: 1203 } });
			} finally {
				await s.close();
			}
		});
	});

	describe('faults', () => {
		it('status: custom status and headers, consumed FIFO with times', async () => {
			sim.addFault({ route: 'create', type: 'status', status: 429, headers: { 'retry-after': '1' }, times: 2 });
			sim.addFault({ route: 'create', type: 'status', status: 503 });
			const a = await createTask(sim, { prompt: 'p' });
			expect(a.status).toBe(429);
			expect(a.headers.get('retry-after')).toBe('1');
			expect(a.json.code).toBe(429);
			expect((await createTask(sim, { prompt: 'p' })).status).toBe(429);
			expect((await createTask(sim, { prompt: 'p' })).status).toBe(503);
			expect((await createTask(sim, { prompt: 'p' })).status).toBe(200);
			expect(sim.apiRequests('create').map((r) => r.afterCreate)).toEqual([false, false, false, true]);
		});

		it('code: HTTP 200 with a non-zero code', async () => {
			sim.addFault({ route: 'create', type: 'code', code: 1102, message: 'Insufficient account balance' });
			const res = await createTask(sim, { prompt: 'p' });
			expect(res).toMatchObject({ status: 200, json: { code: 1102, message: 'Insufficient account balance' } });
			expect(sim.tasks.size).toBe(0);
		});

		it('drop: no response, with or without the task created', async () => {
			sim.addFault({ route: 'create', type: 'drop' });
			sim.addFault({ route: 'create', type: 'drop', afterCreate: true });
			const body = JSON.stringify({ prompt: 'p' });
			const first = await raw(sim.apiUrl + CREATE_PATH, { method: 'POST', headers: authHeaders(sim), body });
			expect(first.status).toBeUndefined();
			expect(first.error).toBeDefined();
			expect(sim.tasks.size).toBe(0);
			const second = await raw(sim.apiUrl + CREATE_PATH, { method: 'POST', headers: authHeaders(sim), body });
			expect(second.status).toBeUndefined();
			expect(sim.tasks.size).toBe(1);
			expect(sim.apiRequests('create').map((r) => [r.fault, r.afterCreate])).toEqual([
				['drop', false],
				['drop', true],
			]);
		});

		it('dropMidBody: cut JSON on the API', async () => {
			const { json } = await createTask(sim, { prompt: 'p' });
			sim.addFault({ route: 'query', type: 'dropMidBody' });
			const res = await raw(`${sim.apiUrl}${CREATE_PATH}/${json.data.task_id}`, { headers: authHeaders(sim) });
			expect(res.status).toBe(200);
			expect(res.complete).toBe(false);
			expect(res.body.length).toBe(Math.floor(Number(res.headers['content-length']) / 2));
			expect(() => JSON.parse(res.body.toString())).toThrow();
		});

		it('delay: responds normally after the wait (create happens first)', async () => {
			sim.addFault({ route: 'create', type: 'delay', ms: 150 });
			const started = Date.now();
			const pending = createTask(sim, { prompt: 'p' });
			await sleep(50);
			expect(sim.tasks.size).toBe(1);
			const res = await pending;
			expect(Date.now() - started).toBeGreaterThanOrEqual(140);
			expect(res.json.code).toBe(0);
		});

		it('malformed: HTTP 200 with invalid JSON', async () => {
			sim.addFault({ route: 'query', type: 'malformed' });
			const res = await raw(`${sim.apiUrl}${CREATE_PATH}/x`, { headers: authHeaders(sim) });
			expect(res.status).toBe(200);
			expect(res.headers['content-type']).toContain('application/json');
			expect(() => JSON.parse(res.body.toString())).toThrow();
		});

		it('image faults: contentType, oversize, truncate, dropMidBody, status', async () => {
			const url: string = (await succeededTask()).task_result.images[0].url;
			const expected = sim.expectedImageBytes(url);

			sim.addFault({ route: 'image', type: 'contentType', contentType: 'text/html' });
			const html = await raw(url);
			expect(html.headers['content-type']).toBe('text/html');
			expect(html.body.equals(expected)).toBe(true);

			sim.addFault({ route: 'image', type: 'oversize', bytes: 3_000_000 });
			const over = await raw(url);
			expect(over.body.length).toBe(3_000_000);
			expect(readImageSize(over.body)?.format).toBe('png');

			sim.addFault({ route: 'image', type: 'truncate' });
			const truncated = await raw(url);
			expect(truncated.headers['content-length']).toBe(String(expected.length));
			expect(truncated.complete).toBe(false);
			expect(truncated.body.equals(expected.subarray(0, Math.floor(expected.length / 2)))).toBe(true);

			sim.addFault({ route: 'image', type: 'dropMidBody', bytes: 100 });
			const dropped = await raw(url);
			expect(dropped.complete).toBe(false);
			expect(dropped.body.length).toBe(100);

			sim.addFault({ route: 'image', type: 'status', status: 502, body: 'Bad Gateway' });
			const bad = await raw(url);
			expect(bad.status).toBe(502);
			expect(bad.body.toString()).toBe('Bad Gateway');

			expect((await raw(url)).body.equals(expected)).toBe(true);
			expect(sim.imageRequests().map((r) => r.fault)).toEqual([
				'contentType',
				'oversize',
				'truncate',
				'dropMidBody',
				'status',
				undefined,
			]);
		});

		it('rejects invalid faults', () => {
			expect(() => sim.addFault({ route: 'create', type: 'oversize', bytes: 1 })).toThrow(TypeError);
			expect(() => sim.addFault({ route: 'query', type: 'delay' } as any)).toThrow(TypeError);
		});
	});

	describe('redirect and trickle faults', () => {
		it('redirect: create, query and image answer a redirect to another host', async () => {
			const echo = await startEchoServer();
			try {
				expect(echo.url).toMatch(/^http:\/\/127\.0\.0\.3:\d+$/);
				sim.addFault({ route: 'create', type: 'redirect', status: 307, location: `${echo.url}/v1/elsewhere` });
				const created = await raw(sim.apiUrl + CREATE_PATH, { method: 'POST', headers: authHeaders(sim), body: '{"prompt":"p"}' });
				expect(created.status).toBe(307);
				expect(created.headers.location).toBe(`${echo.url}/v1/elsewhere`);
				expect(sim.tasks.size).toBe(0);
				expect(sim.apiRequests('create')[0]).toMatchObject({ fault: 'redirect', afterCreate: false, status: 307 });

				sim.addFault({ route: 'query', type: 'redirect', status: 301, location: 'https://example.org/x' });
				const queried = await raw(`${sim.apiUrl}${CREATE_PATH}/sim-1`, { headers: authHeaders(sim) });
				expect(queried).toMatchObject({ status: 301, headers: { location: 'https://example.org/x' } });

				// A client that follows redirects ends up on the other host.
				const url: string = (await succeededTask()).task_result.images[0].url;
				sim.addFault({ route: 'image', type: 'redirect', location: `${echo.url}/img.png?sig=1` });
				const followed = await fetch(url);
				expect(followed.status).toBe(200);
				expect(await followed.json()).toEqual({ ok: true });
				expect(sim.imageRequests()[0]).toMatchObject({ fault: 'redirect', status: 302 });
				expect(echo.requests.map((r) => [r.method, r.path])).toEqual([['GET', '/img.png?sig=1']]);

				expect(() => sim.addFault({ route: 'query', type: 'redirect', status: 200 as any, location: '/' })).toThrow(TypeError);
				expect(() => sim.addFault({ route: 'query', type: 'redirect' } as any)).toThrow(TypeError);
			} finally {
				await echo.close();
			}
		});

		it('trickle: JSON answers get spaces one at a time, then the real body', async () => {
			const { json } = await createTask(sim, { prompt: 'p' });
			sim.addFault({ route: 'query', type: 'trickle', intervalMs: 5, bytes: 3 });
			const res = await raw(`${sim.apiUrl}${CREATE_PATH}/${json.data.task_id}`, { headers: authHeaders(sim) });
			expect(res.complete).toBe(true);
			expect(res.body.subarray(0, 4).toString()).toBe('   {');
			expect(res.headers['content-length']).toBe(String(res.body.length));
			expect(JSON.parse(res.body.toString())).toMatchObject({ code: 0, data: { task_id: json.data.task_id } });
			expect(sim.apiRequests('query')[0]).toMatchObject({ fault: 'trickle', trickledBytes: 3, status: 200 });

			sim.addFault({ route: 'create', type: 'trickle', intervalMs: 5, bytes: 2 });
			const created = await raw(sim.apiUrl + CREATE_PATH, { method: 'POST', headers: authHeaders(sim), body: '{"prompt":"p"}' });
			expect(JSON.parse(created.body.toString()).code).toBe(0);
			expect(sim.apiRequests('create')[1]).toMatchObject({ fault: 'trickle', afterCreate: true });
		});

		it('trickle without bytes never ends: only a whole-request deadline gets the client out', async () => {
			const { json } = await createTask(sim, { prompt: 'p' });
			sim.addFault({ route: 'query', type: 'trickle', intervalMs: 10 });
			const received = await new Promise<string>((resolve, reject) => {
				const req = http.get(`${sim.apiUrl}${CREATE_PATH}/${json.data.task_id}`, { headers: authHeaders(sim), agent: false }, (res) => {
					let text = '';
					expect(res.headers['content-length']).toBeUndefined();
					res.on('data', (chunk: Buffer) => {
						text += chunk.toString();
						if (text.length >= 3) {
							req.destroy(); // the client's own deadline
							resolve(text);
						}
					});
				});
				req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
			});
			expect(received).toMatch(/^ {3,}$/);
			expect(sim.apiRequests('query')[0].trickledBytes).toBeGreaterThanOrEqual(3);
		});

		it('trickle on the image route sends the image itself byte by byte', async () => {
			const url: string = (await succeededTask()).task_result.images[0].url;
			sim.addFault({ route: 'image', type: 'trickle', intervalMs: 2, bytes: 4 });
			const res = await raw(url);
			expect(res.complete).toBe(true);
			expect(res.body.equals(sim.expectedImageBytes(url))).toBe(true);
			expect(sim.imageRequests()[0]).toMatchObject({ fault: 'trickle', trickledBytes: 4 });
		});

		it('startEchoServer records requests and answers as scripted', async () => {
			const echo = await startEchoServer({ respond: { status: 418, body: { no: 'coffee' } } });
			try {
				const res = await fetch(`${echo.url}/a?b=1`, { method: 'PUT', headers: { 'x-test': 'yes' }, body: '{"k":1}' });
				expect(res.status).toBe(418);
				expect(await res.json()).toEqual({ no: 'coffee' });
				echo.respondWith((r) => ({ status: r.method === 'GET' ? 204 : 500, body: '' }));
				expect((await fetch(echo.url)).status).toBe(204);
				const seen = await echo.waitFor(2);
				expect(seen.map((r) => [r.method, r.path, r.body, r.aborted])).toEqual([
					['PUT', '/a?b=1', { k: 1 }, false],
					['GET', '/', undefined, false],
				]);
				expect(seen[0].headers['x-test']).toBe('yes');
				await expect(echo.waitFor(3, 20)).rejects.toThrow('2 of 3');
			} finally {
				await echo.close();
			}
		});
	});
});
