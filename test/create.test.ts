import { createReferenceJpeg, createReferencePng, type Simulator } from '../simulator';
import { binaryToBuffer, makeBinary } from './harness';
import { API_KEY, createParams, errorMessage, runKling, startSim } from './support/kling';

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim();
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

describe('Create Omni Image: the request that reaches the API', () => {
	it('sends every field of a single-image request, n but no series_amount', async () => {
		const { error } = await runKling(
			sim,
			createParams({
				prompt: 'Use <<<image_1>>> and <<<element_1>>> in a studio',
				modelName: 'kling-v3-omni',
				referenceImages: { image: [{ source: 'url', url: 'https://example.com/ref.png' }] },
				elements: { element: [{ elementId: '12345' }, { elementId: 'el-abc' }] },
				resolution: '2k',
				resultType: 'single',
				n: 3,
				seriesAmount: 7,
				aspectRatio: '3:2',
				waitForCompletion: false,
				additionalFields: {
					watermark: true,
					callbackUrl: 'https://example.com/hook',
					externalTaskId: 'my-id-1',
				},
			}),
		);
		expect(error).toBeUndefined();
		const creates = sim.apiRequests('create');
		expect(creates).toHaveLength(1);
		expect(creates[0].body).toEqual({
			model_name: 'kling-v3-omni',
			prompt: 'Use <<<image_1>>> and <<<element_1>>> in a studio',
			image_list: [{ image: 'https://example.com/ref.png' }],
			element_list: [{ element_id: 12345 }, { element_id: 'el-abc' }],
			resolution: '2k',
			result_type: 'single',
			n: 3,
			aspect_ratio: '3:2',
			watermark_info: { enabled: true },
			// The Callback URL with the token the trigger checks (for this task's external ID and this URL).
			callback_url: expect.stringMatching(/^https:\/\/example\.com\/hook\?kling_token=[0-9a-z]+\.[A-Za-z0-9_-]{32}$/),
			external_task_id: 'my-id-1',
		});
		expect(creates[0].headers.authorization).toBe(`Bearer ${API_KEY}`);
	});

	it('sends series_amount and no n for a series', async () => {
		await runKling(sim, createParams({ resultType: 'series', n: 5, seriesAmount: 6, waitForCompletion: false }));
		const body = sim.apiRequests('create')[0].body;
		expect(body.series_amount).toBe(6);
		expect(body).not.toHaveProperty('n');
		expect(body.result_type).toBe('series');
	});

	it('sends the defaults a user sees and nothing optional that was left empty', async () => {
		await runKling(sim, createParams({ waitForCompletion: false }));
		expect(sim.apiRequests('create')[0].body).toEqual({
			model_name: 'kling-image-o1',
			prompt: 'A lighthouse at dawn',
			resolution: '1k',
			result_type: 'single',
			n: 1,
			aspect_ratio: 'auto',
		});
	});

	it('sends binary reference images as raw Base64 of the exact bytes, in list order', async () => {
		const png = createReferencePng(400, 320);
		const jpeg = createReferenceJpeg(640, 480);
		const input = {
			json: {},
			binary: {
				first: await makeBinary(png, 'a.png', 'image/png'),
				second: await makeBinary(jpeg, 'b.jpg', 'image/jpeg'),
			},
		};
		const { error } = await runKling(
			sim,
			createParams({
				waitForCompletion: false,
				referenceImages: {
					image: [
						{ source: 'binary', binaryPropertyName: 'second' },
						{ source: 'url', url: 'https://example.com/x.jpg' },
						{ source: 'binary', binaryPropertyName: 'first' },
					],
				},
			}),
			{ inputItems: [input] },
		);
		expect(error).toBeUndefined();
		const list = sim.apiRequests('create')[0].body.image_list;
		expect(list).toEqual([
			{ image: jpeg.toString('base64') },
			{ image: 'https://example.com/x.jpg' },
			{ image: png.toString('base64') },
		]);
		expect(list[0].image.startsWith('data:')).toBe(false);
	});

	it('generates a unique external task id per item when asked', async () => {
		await runKling(sim, createParams({ waitForCompletion: false, additionalFields: { generateExternalTaskId: true } }), {
			inputItems: [{ json: {} }, { json: {} }],
		});
		const ids = sim.apiRequests('create').map((request) => request.body.external_task_id as string);
		expect(ids).toHaveLength(2);
		expect(ids[0]).toMatch(/^n8n-.+-0-[a-z0-9]+$/);
		expect(ids[1]).toMatch(/^n8n-.+-1-[a-z0-9]+$/);
		expect(ids[0]).not.toBe(ids[1]);
	});
});

describe('Create Omni Image: what comes out', () => {
	it('without waiting, outputs the created task for a later Wait for Completion', async () => {
		const { output, error } = await runKling(sim, createParams({ waitForCompletion: false }));
		expect(error).toBeUndefined();
		const [item] = output[0];
		const task = [...sim.tasks.values()][0];
		expect(item.json).toMatchObject({ task_id: task.id, status: 'submitted', images: [] });
		expect(item.json.created_at).toBe(new Date(task.createdAt).toISOString());
		expect(item.binary).toBeUndefined();
		expect(sim.apiRequests('query')).toHaveLength(0);
	});

	it('waits, then outputs one item per image with the exact bytes, MIME type and a file name naming the task', async () => {
		const { output, error } = await runKling(sim, createParams({ n: 3 }));
		expect(error).toBeUndefined();
		const items = output[0];
		expect(items).toHaveLength(3);
		const task = [...sim.tasks.values()][0];
		for (const [position, item] of items.entries()) {
			const image = task.images[position];
			expect(item.pairedItem).toEqual({ item: 0 });
			expect(item.json).toMatchObject({
				task_id: task.id,
				status: 'succeed',
				cost: '3',
				image: { index: image.index, url: image.url, source_url: image.url },
			});
			const binary = item.binary!.data;
			expect(binary.mimeType).toBe('image/png');
			expect(binary.fileName).toBe(`kling-${task.id}-${image.index}.png`);
			expect(await binaryToBuffer(binary)).toEqual(sim.expectedImageBytes(image.url));
		}
	});

	it('puts all images of a task in one item in per-task mode, under a renamed field', async () => {
		const { output } = await runKling(
			sim,
			createParams({ resultType: 'series', seriesAmount: 2, options: { pollInterval: 1, outputMode: 'taskPerItem', binaryPropertyName: 'img' } }),
		);
		expect(output[0]).toHaveLength(1);
		const item = output[0][0];
		expect(Object.keys(item.binary!).sort()).toEqual(['img_0', 'img_1']);
		expect(item.json.binary_properties).toEqual(['img_0', 'img_1']);
		const task = [...sim.tasks.values()][0];
		expect(await binaryToBuffer(item.binary!.img_1)).toEqual(sim.expectedImageBytes(task.images[1].url));
	});

	it('downloads the watermarked images when asked', async () => {
		const { output, error } = await runKling(
			sim,
			createParams({ additionalFields: { watermark: true }, options: { pollInterval: 1, downloadWatermarked: true } }),
		);
		expect(error).toBeUndefined();
		const task = [...sim.tasks.values()][0];
		const watermarkUrl = task.images[0].watermark_url!;
		expect(output[0][0].json.image).toMatchObject({ source_url: watermarkUrl, watermark_url: watermarkUrl });
		expect(await binaryToBuffer(output[0][0].binary!.data)).toEqual(sim.expectedImageBytes(watermarkUrl));
		expect(output[0][0].binary!.data.fileName).toBe(`kling-${task.id}-0-watermarked.png`);
	});

	it('stores JPEG results as image/jpeg with a .jpg name', async () => {
		const jpegSim = await startSim({ imageFormat: 'jpeg' });
		try {
			const { output } = await runKling(jpegSim, createParams());
			expect(output[0][0].binary!.data.mimeType).toBe('image/jpeg');
			expect(output[0][0].binary!.data.fileName).toMatch(/\.jpg$/);
		} finally {
			await jpegSim.close();
		}
	});

	it('keeps items paired to their inputs, one task per item, all created before the first poll', async () => {
		const inputs = ['a cat', 'a dog', 'a fox'].map((prompt) => ({ json: { prompt } }));
		const { output, error } = await runKling(sim, createParams({ prompt: '={{ $json.prompt }}' }), { inputItems: inputs });
		expect(error).toBeUndefined();
		expect(output[0].map((item) => item.pairedItem)).toEqual([{ item: 0 }, { item: 1 }, { item: 2 }]);
		const prompts = sim.apiRequests('create').map((request) => request.body.prompt);
		expect(prompts.sort()).toEqual(['a cat', 'a dog', 'a fox']);
		for (const [index, item] of output[0].entries()) {
			const task = sim.tasks.get(item.json.task_id as string)!;
			expect(task.body.prompt).toBe(inputs[index].json.prompt);
		}
		const firstQuery = sim.requests.findIndex((request) => request.route === 'query');
		const lastCreate = sim.requests.map((request) => request.route).lastIndexOf('create');
		expect(lastCreate).toBeLessThan(firstQuery);
	});

	it('reports a failed task as an error with the provider reason', async () => {
		const failing = await startSim({ taskPlan: () => ({ outcome: 'failed', failReason: 'Prompt violates content policy' }) });
		try {
			const { error } = await runKling(failing, createParams());
			expect(errorMessage(error)).toMatch(/failed: Prompt violates content policy/);
			expect(failing.apiRequests('create')).toHaveLength(1);
		} finally {
			await failing.close();
		}
	});
});
