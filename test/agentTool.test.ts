/*
 * The node as an AI agent tool, through n8n-core's real execute context: n8n runs the `klingOmniImageTool`
 * variant (same properties and execute, name + "Tool"), and an agent passes the output JSON, or an error's
 * message, to its model. The e2e counterpart with a real AI Agent is test/e2e/agent.e2e.test.ts.
 */
import type { INodeType } from 'n8n-workflow';

import { KlingOmniImage } from '../nodes/KlingOmniImage/KlingOmniImage.node';
import type { Simulator } from '../simulator';
import { createParams, errorMessage, FAST, runKling, startSim } from './support/kling';
import { sleep } from './support/wait';

let sim: Simulator;

beforeAll(async () => {
	sim = await startSim({
		taskPlan: (body) =>
			typeof body?.prompt === 'string' && body.prompt.includes('FAIL') ? { outcome: 'failed', failReason: 'Rejected by the content filter' } : undefined,
	});
});
afterAll(async () => await sim.close());

/** What n8n's tool generation makes of the node (n8n/dist/tool-generation/ai-tools.js), main input kept. */
function toolVariant(): INodeType {
	const node = new KlingOmniImage();
	return { description: { ...node.description, name: `${node.description.name}Tool` }, execute: node.execute };
}

const runTool = async (parameters: Parameters<typeof runKling>[1]) => await runKling(sim, parameters, { nodeType: toolVariant() });

describe('as an agent tool the node gives the model short JSON, one item per task', () => {
	test('a finished task: task_id, status, image_urls, cost and a note; the files stay as binary data', async () => {
		const result = await runTool(createParams({ n: 2 }));
		expect(result.error).toBeUndefined();
		const [items] = result.output;
		expect(items).toHaveLength(1);
		const { json, binary } = items[0];
		expect(Object.keys(json).sort()).toEqual(['cost', 'image_urls', 'note', 'status', 'task_id']);
		expect(json.status).toBe('succeed');
		expect(json.image_urls).toEqual([0, 1].map((i) => expect.stringContaining(`/images/${json.task_id}/${i}.`)));
		expect(json.note).toMatch(/expire/);
		expect(Object.keys(binary ?? {}).sort()).toEqual(['data', 'data_1']);
		expect(JSON.stringify(json).length).toBeLessThan(800);
	});

	test('a task not finished yet: its status and a note to check again with the task_id', async () => {
		const result = await runTool(createParams({ waitForCompletion: false }));
		const [[item]] = result.output;
		expect(item.json).toMatchObject({ status: 'submitted', note: expect.stringMatching(/task_id/) });
		expect(item.json.image_urls).toBeUndefined();
		expect(item.binary).toBeUndefined();
	});

	test('a failed task read with Get Task: the reason', async () => {
		const created = await runTool(createParams({ prompt: 'FAIL this one', waitForCompletion: false }));
		const taskId = created.output[0][0].json.task_id as string;
		await sleep(500);
		const result = await runTool({ operation: 'getTask', taskId });
		expect(result.output[0][0].json).toMatchObject({
			task_id: taskId,
			status: 'failed',
			reason: 'Rejected by the content filter',
		});
	});
});

describe('as an agent tool an error says what to change, in the message the model gets', () => {
	test('an empty prompt: the description is in the message, without the [item N] suffix; nothing is created', async () => {
		const before = sim.apiRequests('create').length;
		const result = await runTool(createParams({ prompt: '  ' }));
		expect(errorMessage(result.error)).toBe('Prompt is empty. Describe the image to generate.');
		expect(sim.apiRequests('create')).toHaveLength(before);
	});

	test('outside an agent the message is unchanged', async () => {
		const result = await runKling(sim, createParams({ prompt: '', options: { ...FAST } }));
		expect(errorMessage(result.error)).toBe('Prompt is empty [item 0]');
	});
});
