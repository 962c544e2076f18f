/*
 * The node's form as the editor renders it: which fields Result Type shows, the order of the options (the
 * default first, then a natural order), the Prompt placeholder as text, and the Operation list with n8n's
 * "Custom API Call" last, whose notice sends the user to an HTTP Request node.
 */
import { until } from '../support/wait';
import { Editor } from './editor';

let editor: Editor;

beforeAll(async () => {
	editor = await Editor.open('form');
	await editor.addNodeToNewWorkflow();
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
 * `injectCustomApiCallOptions()` in n8n's packages/cli/src/load-nodes-and-credentials.ts. It stays offered, as
 * in n8n's own nodes: picking it shows n8n's notice `nodeSettings.useTheHttpRequestNode` (NodeSettings.vue,
 * data-test-id node-parameters-http-notice), which sends the user to an HTTP Request node with this credential
 * (test/e2e/customApiCall.e2e.test.ts runs that); the node itself, run with it, throws an error saying the same
 * (test/customApiCall.test.ts).
 */
const NOTICE =
	"Use the HTTP Request node to make a custom API call. We'll take care of the Kling Omni Image (CometAPI) auth for you.";

test('Operation lists the three operations, then n8n\'s "Custom API Call", whose notice points to the HTTP Request node', async () => {
	const operations = await editor.dropdownOptions('Operation', 'operations');
	expect(operations).toEqual(['Create Omni Image', 'Get Task', 'Wait for Completion', 'Custom API Call']);

	await editor.choose('Operation', 'Custom API Call');
	const notice = await until('n8n\'s "use the HTTP Request node" notice', () =>
		editor.page.evaluate(() => {
			const el = document.querySelector('[data-test-id=ndv] [data-test-id=node-parameters-http-notice]') as HTMLElement | null;
			if (!el?.checkVisibility()) return null;
			const link = el.querySelector('a');
			return {
				text: el.innerText.replace(/\s+/g, ' ').trim(),
				link: link ? { text: link.innerText.trim(), href: link.getAttribute('href') } : null,
			};
		}),
	);
	await editor.shot('custom-api-call-notice');
	expect(notice.text).toContain(NOTICE);
	expect(notice.link).toEqual({ text: 'Learn more', href: 'https://docs.n8n.io/integrations/custom-operations/' });
});
