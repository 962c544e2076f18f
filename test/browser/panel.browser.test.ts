/*
 * Finding the node as a user does: the nodes panel's search, from "What triggers this workflow?" on a new
 * workflow and from "What happens next?" after a node, with the words users type. The node was once listed
 * only under + → AI as "Miscellaneous (sub-nodes)" (its codex put it in the AI category), and every search
 * answered "No results".
 */
import { CREATE_ACTION, Editor, NODE_TITLE } from './editor';

const SEARCHES = ['kling', 'Kling Omni Image', 'cometapi', 'omni image'];
const ACTIONS = [CREATE_ACTION, 'Get a task', 'Wait for a task to complete'];

let editor: Editor;

beforeAll(async () => {
	editor = await Editor.open('panel');
	await editor.newWorkflow();
});

afterAll(async () => {
	await editor?.close();
});

const slug = (term: string) => term.toLowerCase().replace(/[^a-z0-9]+/g, '-');

/** For each search: whether the panel lists the node, and what it listed instead when it does not. */
async function searchAll(panel: string): Promise<Record<string, string>> {
	const found: Record<string, string> = {};
	for (const term of SEARCHES) {
		const { items, text } = await editor.search(term);
		await editor.shot(`${panel}-search-${slug(term)}`);
		found[term] = items.includes(NODE_TITLE)
			? 'listed'
			: text.includes('No results')
				? `not listed: "${text.split('\n').find((l) => l.includes('No results'))}"`
				: `not listed: ${JSON.stringify(items)}`;
	}
	return found;
}

const ALL_LISTED = Object.fromEntries(SEARCHES.map((term) => [term, 'listed']));

test('"What triggers this workflow?" on a new workflow finds the node with each search, and adds it', async () => {
	await editor.openTriggerPanel();
	expect(await editor.panelText()).toContain('What triggers this workflow?');
	expect(await searchAll('trigger-panel')).toEqual(ALL_LISTED);

	await editor.search('kling');
	await editor.shot('node-in-panel');
	const listed = await editor.openNodeInPanel();
	await editor.shot('actions');
	expect(listed).toEqual(expect.arrayContaining(ACTIONS));
	// The package's trigger (finished tasks by callback) is offered here as the node's trigger.
	expect(listed.filter((name) => name !== NODE_TITLE && name.includes(NODE_TITLE))).toHaveLength(1);
	expect(await editor.panelText()).not.toMatch(/custom\s.*api call/i);

	await editor.clickPanelItem(CREATE_ACTION);
	await editor.page.waitForSelector('[data-test-id=ndv] [data-test-id=node-parameters]');
	await editor.shot('added-from-trigger-panel');
	await editor.closeNode();
	expect(await editor.canvasNodes()).toContain('Kling Omni Image');
});

test('"What happens next?" after that node finds it with each search, and adds a second one', async () => {
	// A workflow of its own, so that this test does not depend on the one above.
	await editor.newWorkflow();
	await editor.openTriggerPanel();
	await editor.search('kling');
	await editor.addNodeFromPanel();
	await editor.closeNode();
	await editor.openNextPanel('Kling Omni Image');
	expect(await editor.panelText()).toContain('What happens next?');
	expect(await searchAll('next-panel')).toEqual(ALL_LISTED);

	await editor.search('omni image');
	await editor.addNodeFromPanel();
	await editor.shot('added-from-next-panel');
	await editor.closeNode();
	const kling = (await editor.canvasNodes()).filter((name) => name.startsWith('Kling Omni Image'));
	await editor.shot('two-nodes');
	expect(kling).toHaveLength(2);
});
