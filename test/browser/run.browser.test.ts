/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/*
 * Example 1 as the README tells a user to run it: open it, press "Execute workflow", open "Create Omni Image"
 * and look at its output's Binary tab, then view an image.
 */
import { until } from '../support/wait';
import { Editor } from './editor';

const WORKFLOW_ID = 'klingOmniExample1';
const KLING_NODE = 'Create Omni Image';
const LAST_NODE = 'Write Files to Disk';

let editor: Editor;

beforeAll(async () => {
	editor = await Editor.open('run');
});

afterAll(async () => {
	await editor?.close();
});

test('example 1 runs from the editor and the Binary tab of "Create Omni Image" shows the images', async () => {
	const { page } = editor;
	await editor.goto(`/workflow/${WORKFLOW_ID}`);
	await page.waitForSelector('[data-test-id=execute-workflow-button]');
	expect(await editor.canvasNodes()).toEqual(expect.arrayContaining([KLING_NODE, LAST_NODE]));
	await editor.shot('example-1');

	await page.click('[data-test-id=execute-workflow-button]');
	const outcome = await until(
		'the run to finish',
		() =>
			page.evaluate(() => {
				if (document.querySelector('[data-test-id=canvas-node] [data-test-id=canvas-node-status-error]')) return 'error';
				const last = [...document.querySelectorAll('[data-test-id=canvas-node]')].find(
					(n) => n.getAttribute('data-node-name') === 'Write Files to Disk',
				);
				return last?.querySelector('[data-test-id=canvas-node-status-success]') ? 'success' : '';
			}),
		120000,
	);
	await editor.shot('executed');
	expect(outcome).toBe('success');

	await editor.openNode(KLING_NODE);
	await page.click('[data-test-id=output-panel] [data-test-id=radio-button-binary]');
	await until('binary items in the output', async () => (await page.$$('[data-test-id=output-panel] [data-test-id=ndv-view-binary-data]')).length > 0);
	const listing = await page.$eval('[data-test-id=output-panel]', (el) => (el as HTMLElement).innerText);
	await editor.shot('binary-tab');
	expect(listing).toMatch(/\b2 items\b/);
	expect(listing.match(/image\/png/g) ?? []).toHaveLength(2);
	expect(listing.match(/\.png\b/g)?.length ?? 0).toBeGreaterThanOrEqual(2);

	await page.click('[data-test-id=output-panel] [data-test-id=ndv-view-binary-data]');
	const image = await until(
		'the image to show in the output panel',
		() =>
			page.evaluate(() => {
				const img = document.querySelector('[data-test-id=output-panel] img[src*="/rest/binary-data"]') as HTMLImageElement | null;
				return img && img.complete && img.naturalWidth > 0 ? { width: img.naturalWidth, height: img.naturalHeight } : null;
			}),
		30000,
	);
	await editor.shot('image-in-output');
	expect(image.width).toBeGreaterThan(0);
	expect(image.height).toBeGreaterThan(0);
});
