/**
 * Bad input: every field with invalid values ends in a clear error naming the field and item
 * before any request is sent (the simulator sees nothing), and every field at its limits is sent.
 */
import type { IBinaryData, IDataObject, INodeExecutionData, INodeParameters } from 'n8n-workflow';

import { createReferenceJpeg, createReferencePng, type Simulator } from '../simulator';
import { makeBinary } from './harness';
import { createParams, errorMessage, runKling, startSim } from './support/kling';

let sim: Simulator;
beforeAll(async () => {
	sim = await startSim();
});
afterEach(() => sim.reset());
afterAll(async () => await sim.close());

type Params = INodeParameters;
type Binaries = Record<string, () => Promise<IBinaryData>>;

const png = (width: number, height: number) => async () => await makeBinary(createReferencePng(width, height), 'ref.png', 'image/png');

const binaries = {
	text: async () => await makeBinary(Buffer.from('just some text, not an image'), 'notes.txt', 'text/plain'),
	textCalledPng: async () => await makeBinary(Buffer.from('just some text, not an image'), 'fake.png', 'image/png'),
	gif: async () =>
		await makeBinary(Buffer.from('47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b', 'hex'), 'a.gif', 'image/gif'),
	tooNarrow: png(299, 400),
	tooShort: png(400, 299),
	tooWide: png(751, 300),
	tooTall: png(300, 751),
	brokenPng: async () => await makeBinary(createReferencePng(400, 400).subarray(0, 20), 'broken.png', 'image/png'),
	tooLarge: async () =>
		await makeBinary(createReferencePng(400, 400, { padToBytes: 10 * 1024 * 1024 + 200_000 }), 'big.png', 'image/png'),
	ok: png(400, 400),
} satisfies Binaries;

interface BadInput {
	name: string;
	params: Params;
	/** Input item json (expressions read it). */
	json?: IDataObject;
	binary?: Array<keyof typeof binaries>;
	message: string;
	/** Options are read once per run, not per item: their errors name no item. */
	nodeLevel?: boolean;
}

/** Create parameters that do not wait (validation must stop everything before the create). */
const create = (overrides: Params): Params => createParams({ waitForCompletion: false, ...overrides });
const url = (value: string) => ({ referenceImages: { image: [{ source: 'url', url: value }] } });
const fromBinary = (...names: string[]) => ({
	referenceImages: { image: names.map((binaryPropertyName) => ({ source: 'binary', binaryPropertyName })) },
});
const urls = (count: number) => Array.from({ length: count }, (_, i) => ({ source: 'url', url: `https://example.com/${i}.png` }));
const elements = (count: number) => Array.from({ length: count }, (_, i) => ({ elementId: String(1000 + i) }));

const badInputs: BadInput[] = [
	// prompt
	{ name: 'prompt empty', params: create({ prompt: '' }), message: 'Prompt is empty [item 0]' },
	{ name: 'prompt only whitespace', params: create({ prompt: ' \n\t ' }), message: 'Prompt is empty [item 0]' },
	{
		name: 'prompt 2,501 characters',
		params: create({ prompt: 'a'.repeat(2501) }),
		message: 'Prompt is 2501 characters long; the API allows at most 2500 [item 0]',
	},
	{
		name: 'prompt 2,501 emoji (counted as characters, not UTF-16 units)',
		params: create({ prompt: '🌅'.repeat(2501) }),
		message: 'Prompt is 2501 characters long; the API allows at most 2500 [item 0]',
	},
	{ name: 'prompt expression resolving to nothing', params: create({ prompt: '={{ $json.missing }}' }), message: 'Prompt is empty [item 0]' },
	{ name: 'prompt expression resolving to null', params: create({ prompt: '={{ null }}' }), message: 'Prompt is empty [item 0]' },
	{
		name: 'prompt expression reading past a missing field',
		params: create({ prompt: '={{ $json.missing.deeper }}' }),
		message: 'Prompt is empty [item 0]',
	},
	// model
	{
		name: 'model unknown',
		params: create({ modelName: 'kling-v9' }),
		message: 'Model "kling-v9" is not supported [item 0]',
	},
	{
		name: 'model expression resolving to nothing',
		params: create({ modelName: '={{ $json.missing }}' }),
		message: 'Model "" is not supported [item 0]',
	},
	// reference images by URL
	{ name: 'image URL not a URL', params: create(url('not a url')), message: 'Reference image 1: "not a url" is not a valid https URL [item 0]' },
	{
		name: 'image URL over http',
		params: create(url('http://example.com/a.png')),
		message: 'Reference image 1: "http://example.com/a.png" is not a valid https URL [item 0]',
	},
	{ name: 'image URL ftp', params: create(url('ftp://example.com/a.png')), message: 'is not a valid https URL [item 0]' },
	{
		name: 'image URL data: URI',
		params: create(url('data:image/png;base64,iVBORw0KGgo=')),
		message: 'is not a valid https URL [item 0]',
	},
	{ name: 'image URL empty', params: create(url('')), message: 'Reference image 1: "" is not a valid https URL [item 0]' },
	{
		name: 'image URL expression resolving to nothing',
		params: create(url('={{ $json.missing }}')),
		message: 'Reference image 1: "" is not a valid https URL [item 0]',
	},
	{
		name: 'second image URL invalid (names its position)',
		params: create({ referenceImages: { image: [{ source: 'url', url: 'https://example.com/a.png' }, { source: 'url', url: 'nope' }] } }),
		message: 'Reference image 2: "nope" is not a valid https URL [item 0]',
	},
	// reference images from binary fields
	{
		name: 'binary field missing',
		params: create(fromBinary('data')),
		message: 'Reference image 1: the input item has no binary field "data" [item 0]',
	},
	{
		name: 'binary field name empty',
		params: create(fromBinary('')),
		message: 'Reference image 1: the input binary field name is empty [item 0]',
	},
	{
		name: 'binary field name from an expression resolving to nothing',
		params: create(fromBinary('={{ $json.missing }}')),
		binary: ['ok'],
		message: 'Reference image 1: the input binary field name is empty [item 0]',
	},
	{
		name: 'binary is a text file',
		params: create(fromBinary('text')),
		binary: ['text'],
		message: 'Reference image 1 ("text") is not a JPEG or PNG image (text/plain) [item 0]',
	},
	{
		name: 'binary is text labelled image/png',
		params: create(fromBinary('textCalledPng')),
		binary: ['textCalledPng'],
		message: 'Reference image 1 ("textCalledPng") is not a JPEG or PNG image (image/png) [item 0]',
	},
	{
		name: 'binary is a GIF',
		params: create(fromBinary('gif')),
		binary: ['gif'],
		message: 'Reference image 1 ("gif") is not a JPEG or PNG image (image/gif) [item 0]',
	},
	{
		name: 'binary PNG cut off before its size',
		params: create(fromBinary('brokenPng')),
		binary: ['brokenPng'],
		message: 'Reference image 1 ("brokenPng") is not a readable PNG image [item 0]',
	},
	{
		name: 'binary 299 px wide',
		params: create(fromBinary('tooNarrow')),
		binary: ['tooNarrow'],
		message: 'Reference image 1 ("tooNarrow") is 299×400 px; each side must be at least 300 px [item 0]',
	},
	{
		name: 'binary 299 px high',
		params: create(fromBinary('tooShort')),
		binary: ['tooShort'],
		message: 'Reference image 1 ("tooShort") is 400×299 px; each side must be at least 300 px [item 0]',
	},
	{
		name: 'binary wider than 2.5:1',
		params: create(fromBinary('tooWide')),
		binary: ['tooWide'],
		message: 'Reference image 1 ("tooWide") is 751×300 px; its aspect ratio must be between 1:2.5 and 2.5:1 [item 0]',
	},
	{
		name: 'binary taller than 1:2.5',
		params: create(fromBinary('tooTall')),
		binary: ['tooTall'],
		message: 'Reference image 1 ("tooTall") is 300×751 px; its aspect ratio must be between 1:2.5 and 2.5:1 [item 0]',
	},
	{
		name: 'binary over 10 MB',
		params: create(fromBinary('tooLarge')),
		binary: ['tooLarge'],
		message: 'Reference image 1 ("tooLarge") is 10.2 MB; the API accepts at most 10 MB [item 0]',
	},
	{
		name: 'second reference a bad binary after a good one',
		params: create(fromBinary('ok', 'tooNarrow')),
		binary: ['ok', 'tooNarrow'],
		message: 'Reference image 2 ("tooNarrow") is 299×400 px',
	},
	// reference count, elements
	{
		name: '11 reference images',
		params: create({ referenceImages: { image: urls(11) } }),
		message: '11 reference images and 0 elements make 11; the API allows at most 10 together [item 0]',
	},
	{
		name: '6 reference images and 5 elements',
		params: create({ referenceImages: { image: urls(6) }, elements: { element: elements(5) } }),
		message: '6 reference images and 5 elements make 11; the API allows at most 10 together [item 0]',
	},
	{
		name: 'element ID empty',
		params: create({ elements: { element: [{ elementId: '  ' }] } }),
		message: 'Element 1: the element ID is empty [item 0]',
	},
	{
		name: 'element ID expression resolving to nothing',
		params: create({ elements: { element: [{ elementId: '123' }, { elementId: '={{ $json.missing }}' }] } }),
		message: 'Element 2: the element ID is empty [item 0]',
	},
	// resolution, result type, counts, aspect ratio
	{ name: 'resolution 8k', params: create({ resolution: '8k' }), message: 'Resolution "8k" is not supported [item 0]' },
	{ name: 'resolution in capitals', params: create({ resolution: '2K' }), message: 'Resolution "2K" is not supported [item 0]' },
	{ name: 'result type unknown', params: create({ resultType: 'multi' }), message: 'Result Type "multi" is not supported [item 0]' },
	{
		name: 'result type expression resolving to a number',
		params: create({ resultType: '={{ 5 }}' }),
		message: 'Result Type "5" is not supported [item 0]',
	},
	...[0, 10, -1, 2.5, 'abc', ''].map((n) => ({
		name: `number of images ${JSON.stringify(n)}`,
		params: create({ resultType: 'single', n }),
		message: `Number of Images must be a whole number from 1 to 9, got "${String(n)}" [item 0]`,
	})),
	{
		name: 'number of images expression resolving to nothing',
		params: create({ n: '={{ $json.missing }}' }),
		message: 'Number of Images must be a whole number from 1 to 9, got "undefined" [item 0]',
	},
	...[1, 10, 3.5, 'four'].map((seriesAmount) => ({
		name: `series amount ${JSON.stringify(seriesAmount)}`,
		params: create({ resultType: 'series', seriesAmount }),
		message: `Series Amount must be a whole number from 2 to 9, got "${String(seriesAmount)}" [item 0]`,
	})),
	{ name: 'aspect ratio 5:4', params: create({ aspectRatio: '5:4' }), message: 'Aspect Ratio "5:4" is not supported [item 0]' },
	{
		name: 'aspect ratio expression resolving to nothing',
		params: create({ aspectRatio: '={{ $json.missing }}' }),
		message: 'Aspect Ratio "" is not supported [item 0]',
	},
	// additional fields
	...['not a url', 'ftp://example.com/hook', 'javascript:alert(1)', 'example.com/hook'].map((callbackUrl) => ({
		name: `callback URL ${JSON.stringify(callbackUrl)}`,
		params: create({ additionalFields: { callbackUrl } }),
		message: `Callback URL "${callbackUrl}" is not a valid http(s) URL [item 0]`,
	})),
	{
		name: '"Download Watermarked Image" without "Watermark"',
		params: createParams({ options: { pollInterval: 1, downloadWatermarked: true } }),
		message: '"Download Watermarked Image" is on but "Watermark" is not [item 0]',
	},
	// options (read once for the run)
	...(
		[
			['pollInterval', 'Poll Interval', 0],
			['pollInterval', 'Poll Interval', 'abc'],
			['maxWaitTime', 'Max Wait Time', 0],
			['maxWaitTime', 'Max Wait Time', -5],
			['maxDownloadSizeMb', 'Max Download Size', 0],
			['maxConcurrentRequests', 'Max Concurrent Requests', 0],
			['requestTimeout', 'Request Timeout', 0],
			['requestTimeout', 'Request Timeout', 'soon'],
		] as const
	).map(([option, label, value]) => ({
		name: `option ${label} ${JSON.stringify(value)}`,
		params: createParams({ options: { [option]: value } }),
		message: `Option "${label}" must be a number of at least 1, got "${String(value)}"`,
		nodeLevel: true,
	})),
	{
		name: 'option Put Output File in Field empty',
		params: createParams({ options: { binaryPropertyName: '  ' } }),
		message: 'Option "Put Output File in Field" must not be empty',
		nodeLevel: true,
	},
	{
		name: 'option Output Mode unknown',
		params: createParams({ options: { outputMode: 'zip' } }),
		message: 'Option "Output Mode" "zip" is not supported',
		nodeLevel: true,
	},
	// task ids of Get Task and Wait for Completion
	...['getTask', 'waitForCompletion'].flatMap((operation) => [
		{ name: `${operation}: task ID empty`, params: { operation, taskId: '' }, message: 'Task ID is empty [item 0]' },
		{ name: `${operation}: task ID whitespace`, params: { operation, taskId: '  ' }, message: 'Task ID is empty [item 0]' },
		{
			name: `${operation}: task ID expression resolving to nothing`,
			params: { operation },
			json: { not_a_task: 1 },
			message: 'Task ID is empty [item 0]',
		},
		{
			name: `${operation}: task ID expression resolving to an object`,
			params: { operation },
			json: { task_id: { id: 'x' } },
			message: 'Task ID must be text, got an object [item 0]',
		},
	]),
];

async function inputItem(json: IDataObject = {}, names: Array<keyof typeof binaries> = []): Promise<INodeExecutionData> {
	const binary: Record<string, IBinaryData> = {};
	for (const name of names) binary[name] = await binaries[name]();
	return names.length ? { json, binary } : { json };
}

describe('bad input: a clear error before any request', () => {
	it.each(badInputs)('$name', async ({ params, json, binary, message, nodeLevel }) => {
		const { error, output } = await runKling(sim, params, { inputItems: [await inputItem(json, binary)] });
		expect(output).toEqual([]);
		expect(errorMessage(error)).toContain(message);
		if (!nodeLevel) expect(errorMessage(error)).toMatch(/\[item 0\]$/);
		expect(sim.requests).toHaveLength(0);
	});

	it('an item in the middle is named, and no item is sent (without Continue On Fail)', async () => {
		const prompts = ['a cat', '', 'a fox'];
		const { error } = await runKling(sim, createParams({ prompt: '={{ $json.prompt }}' }), {
			inputItems: prompts.map((prompt) => ({ json: { prompt } })),
		});
		expect(errorMessage(error)).toBe('Prompt is empty [item 1]');
		expect(sim.requests).toHaveLength(0);
	});

	it('with Continue On Fail, the bad item becomes an error item and the others are created once each', async () => {
		const prompts = ['a cat', 'x'.repeat(3000), 'a fox'];
		const { error, output } = await runKling(
			sim,
			createParams({ prompt: '={{ $json.prompt }}', waitForCompletion: false }),
			{ inputItems: prompts.map((prompt) => ({ json: { prompt } })), continueOnFail: true },
		);
		expect(error).toBeUndefined();
		expect(output[0]).toHaveLength(3);
		expect(output[0][1]).toEqual({
			json: { error: 'Prompt is 3000 characters long; the API allows at most 2500 [item 1]' },
			pairedItem: { item: 1 },
		});
		expect(sim.apiRequests('create').map((request) => request.body.prompt).sort()).toEqual(['a cat', 'a fox']);
		expect(output[0][0].json).toMatchObject({ status: 'submitted' });
		expect(output[0][2].json).toMatchObject({ status: 'submitted' });
	});
});

describe('values at their limits are sent, and the API accepts them', () => {
	it('longest prompt, most images, 10 references, smallest and most extreme images, http callback', async () => {
		const input = await inputItem({}, []);
		input.binary = {
			wide: await makeBinary(createReferencePng(750, 300), 'wide.png', 'image/png'),
			tall: await makeBinary(createReferenceJpeg(300, 750), 'tall.jpg', 'image/jpeg'),
			square: await makeBinary(createReferencePng(300, 300), 'square.png', 'image/png'),
		};
		const { error } = await runKling(
			sim,
			create({
				prompt: '🌅'.repeat(2500),
				n: 9,
				referenceImages: {
					image: [
						{ source: 'binary', binaryPropertyName: 'wide' },
						{ source: 'binary', binaryPropertyName: 'tall' },
						{ source: 'binary', binaryPropertyName: 'square' },
						...urls(3),
					],
				},
				elements: { element: elements(4) },
				additionalFields: { callbackUrl: 'http://example.com/hook', externalTaskId: 'edge-1' },
			}),
			{ inputItems: [input] },
		);
		expect(error).toBeUndefined();
		const [request] = sim.apiRequests('create');
		expect(request.status).toBe(200);
		expect(request.body.image_list).toHaveLength(6);
		expect(request.body.element_list).toHaveLength(4);
		expect(request.body.n).toBe(9);
	});

	it.each([
		{ resultType: 'single', n: 1 },
		{ resultType: 'series', seriesAmount: 2 },
		{ resultType: 'series', seriesAmount: 9 },
	])('counts at their limits: %o', async (counts) => {
		const { error } = await runKling(sim, create(counts));
		expect(error).toBeUndefined();
		expect(sim.apiRequests('create')[0].status).toBe(200);
	});

	it('a number of images given as text from an expression is sent as a number', async () => {
		await runKling(sim, create({ n: '={{ "3" }}' }));
		expect(sim.apiRequests('create')[0].body.n).toBe(3);
	});
});

/** Expressions can resolve to any type: a wrong one is a clear error, never a paid "[object Object]". */
describe('expressions resolving to the wrong type', () => {
	it('a prompt expression resolving to an object is an error, not "[object Object]"', async () => {
		const { error } = await runKling(sim, create({ prompt: '={{ $json.obj }}' }), {
			inputItems: [{ json: { obj: { scene: 'beach' } } }],
		});
		expect(sim.requests).toHaveLength(0);
		expect(errorMessage(error)).toMatch(/Prompt .*\[item 0\]$/);
	});

	it('an external task ID expression resolving to an object is an error, not "[object Object]"', async () => {
		const { error } = await runKling(sim, create({ additionalFields: { externalTaskId: '={{ $json.obj }}' } }), {
			inputItems: [{ json: { obj: { id: 1 } } }],
		});
		expect(sim.requests).toHaveLength(0);
		expect(errorMessage(error)).toMatch(/External Task ID .*\[item 0\]$/);
	});

	it('a callback URL expression resolving to an object names the field', async () => {
		const { error } = await runKling(sim, create({ additionalFields: { callbackUrl: '={{ $json.obj }}' } }), {
			inputItems: [{ json: { obj: { url: 'https://example.com' } } }],
		});
		expect(sim.requests).toHaveLength(0);
		expect(errorMessage(error)).toMatch(/Callback URL .*\[item 0\]$/);
	});

	it('an expression with a syntax error names the field and item', async () => {
		const { error } = await runKling(sim, create({ prompt: '={{ $json. }}' }));
		expect(sim.requests).toHaveLength(0);
		expect(errorMessage(error)).toMatch(/Prompt.*\[item 0\]$/);
	});

	it('a syntax error or an object callback URL stops before any request', async () => {
		await runKling(sim, create({ prompt: '={{ $json. }}' }));
		await runKling(sim, create({ additionalFields: { callbackUrl: '={{ $json.obj }}' } }), {
			inputItems: [{ json: { obj: {} } }],
		});
		expect(sim.requests).toHaveLength(0);
	});
});

describe('external task IDs repeated within a run', () => {
	it('stop the run before any request, naming both items', async () => {
		const { error } = await runKling(sim, create({ additionalFields: { externalTaskId: 'daily-report' } }), {
			inputItems: [{ json: {} }, { json: {} }],
		});
		expect(errorMessage(error)).toBe('External Task ID "daily-report" is already used by item 0 of this run [item 1]');
		expect(sim.requests).toHaveLength(0);
	});

	it('with Continue On Fail, only the repeat becomes an error item', async () => {
		const { output, error } = await runKling(
			sim,
			create({ waitForCompletion: false, additionalFields: { externalTaskId: '={{ $json.id }}' } }),
			{ inputItems: [{ json: { id: 'a' } }, { json: { id: 'b' } }, { json: { id: 'a' } }], continueOnFail: true },
		);
		expect(error).toBeUndefined();
		expect(output[0].map((item) => item.json.error ?? item.json.external_task_id)).toEqual([
			'a',
			'b',
			'External Task ID "a" is already used by item 0 of this run [item 2]',
		]);
		expect(sim.apiRequests('create').map((request) => request.body.external_task_id).sort()).toEqual(['a', 'b']);
	});
});
