/*
 * The node's form as the editor renders it: which fields Result Type shows, the order of the options (the
 * default first, then a natural order), the Prompt placeholder as text, and an Operation list without n8n's
 * "Custom API Call" (which this node cannot run).
 */
import { Editor } from './editor';

let editor: Editor;

beforeAll(async () => {
	editor = await Editor.open('form');
	await editor.newWorkflow();
	await editor.openTriggerPanel();
	await editor.search('kling');
	await editor.addNodeFromPanel();
	await editor.shot('form');
});

afterAll(async () => {
	await editor?.close();
});

test('Result Type "Single" shows Number of Images, "Series" shows Series Amount instead', async () => {
	expect(await editor.selectedOption('Result Type')).toBe('Single');
	let labels = await editor.formLabels();
	expect({ numberOfImages: labels.includes('Number of Images'), seriesAmount: labels.includes('Series Amount') }).toEqual({
		numberOfImages: true,
		seriesAmount: false,
	});

	await editor.choose('Result Type', 'Series');
	await editor.shot('result-type-series');
	labels = await editor.formLabels();
	expect({ numberOfImages: labels.includes('Number of Images'), seriesAmount: labels.includes('Series Amount') }).toEqual({
		numberOfImages: false,
		seriesAmount: true,
	});

	await editor.choose('Result Type', 'Single');
	await editor.shot('result-type-single');
	labels = await editor.formLabels();
	expect({ numberOfImages: labels.includes('Number of Images'), seriesAmount: labels.includes('Series Amount') }).toEqual({
		numberOfImages: true,
		seriesAmount: false,
	});
});

const EXPECTED_OPTIONS: Record<string, string[]> = {
	Model: ['Kling Image O1', 'Kling 3.0 Omni'],
	'Result Type': ['Single', 'Series'],
	Resolution: ['1K', '2K', '4K'],
	'Aspect Ratio': ['Auto', '1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3', '21:9'],
};

test('dropdowns list the default first, then a natural order; the default is what a new node shows', async () => {
	const seen: Record<string, { selected: string; options: string[] }> = {};
	for (const label of Object.keys(EXPECTED_OPTIONS)) {
		const selected = await editor.selectedOption(label);
		const options = await editor.dropdownOptions(label, `options-${label.toLowerCase().replace(/\s+/g, '-')}`);
		seen[label] = { selected, options };
	}
	expect(seen).toEqual(
		Object.fromEntries(Object.entries(EXPECTED_OPTIONS).map(([label, options]) => [label, { selected: options[0], options }])),
	);
});

test('the Prompt placeholder reads as text, without HTML entities', async () => {
	const placeholder = await editor.placeholder('Prompt');
	await editor.shot('prompt-placeholder');
	expect(placeholder).toBe('e.g. A cinematic portrait of <<<image_1>>> in a sunlit studio');
	expect(placeholder).not.toMatch(/&[a-z]+;|&#\d+;/);
});

/*
 * n8n 2.41 appends "Custom API Call" (value __CUSTOM_API_CALL__) to a node's `resource`/`operation` list when
 * one of the node's credential types has `authenticate` (or extends an OAuth type): `supportsProxyAuth()` and
 * `injectCustomApiCallOptions()` in n8n's packages/cli/src/load-nodes-and-credentials.ts. The node itself
 * cannot run it (n8n only shows "use the HTTP Request node"; executing it fails with 'The operation
 * "__CUSTOM_API_CALL__" is not supported'). Not offering it means a credential without `authenticate`, its
 * test request sending `Authorization: Bearer {{$credentials.apiKey}}` itself, and the node adding the header.
 */
test('Operation lists the node\'s operations and not n8n\'s "Custom API Call"', async () => {
	const operations = await editor.dropdownOptions('Operation', 'operations');
	expect(operations).toEqual(expect.arrayContaining(['Create Omni Image', 'Get Task', 'Wait for Completion']));
	expect(operations).not.toContain('Custom API Call');
});
