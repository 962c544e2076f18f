import { NodeHelpers, type INode, type INodeParameters } from 'n8n-workflow';

import { KlingOmniImage } from '../nodes/KlingOmniImage/KlingOmniImage.node';

const description = new KlingOmniImage().description;

/** The parameters n8n keeps for a node with these values set: what the editor shows and saves. */
function visibleParameters(values: INodeParameters): INodeParameters {
	const node = { parameters: values, typeVersion: 1 } as unknown as INode;
	return NodeHelpers.getNodeParameters(description.properties, values, true, false, node, description) ?? {};
}

describe('the form follows the operation and the result type', () => {
	it('single shows the number of images and not the series amount', () => {
		const shown = visibleParameters({ operation: 'createOmniImage', resultType: 'single' });
		expect(shown).toHaveProperty('n', 1);
		expect(shown).not.toHaveProperty('seriesAmount');
	});

	it('series shows the series amount and not the number of images', () => {
		const shown = visibleParameters({ operation: 'createOmniImage', resultType: 'series' });
		expect(shown).toHaveProperty('seriesAmount', 4);
		expect(shown).not.toHaveProperty('n');
	});

	it('defaults: wait for completion on, model kling-image-o1, 1k, auto aspect ratio', () => {
		expect(visibleParameters({ operation: 'createOmniImage' })).toMatchObject({
			modelName: 'kling-image-o1',
			resolution: '1k',
			resultType: 'single',
			aspectRatio: 'auto',
			waitForCompletion: true,
		});
	});

	it.each(['getTask', 'waitForCompletion'])('%s asks for a task id defaulting to the incoming task_id, and no prompt', (operation) => {
		const shown = visibleParameters({ operation });
		expect(shown.taskId).toBe('={{ $json.task_id }}');
		expect(shown).not.toHaveProperty('prompt');
	});

	it('keeps the options a user set for the operation in use (a shared collection once dropped them)', () => {
		const options = { pollInterval: 5, outputMode: 'taskPerItem', binaryPropertyName: 'img' };
		expect(visibleParameters({ operation: 'createOmniImage', options }).options).toEqual(options);
		expect(visibleParameters({ operation: 'waitForCompletion', options }).options).toEqual(options);
		expect(visibleParameters({ operation: 'getTask', downloadImages: true, options: { outputMode: 'taskPerItem' } }).options).toEqual({
			outputMode: 'taskPerItem',
		});
	});

	it('is usable as a tool and declares the CometAPI credential', () => {
		expect(description.usableAsTool).toBe(true);
		expect(description.credentials).toEqual([{ name: 'cometApiKlingApi', required: true }]);
	});
});

describe('as an AI agent tool (the klingOmniImageTool variant n8n generates)', () => {
	// n8n's variant: the same properties under the name `<name>Tool` (n8n's tool-generation/ai-tools.js).
	const tool = { ...description, name: `${description.name}Tool` };
	const toolParameters = (values: INodeParameters): INodeParameters => {
		const node = { parameters: values, typeVersion: 1 } as unknown as INode;
		return NodeHelpers.getNodeParameters(tool.properties, values, true, false, node, tool) ?? {};
	};
	const operations = ['createOmniImage', 'getTask', 'waitForCompletion'];

	it('declares its own toolDescription, so n8n adds no "Set Automatically" field fed by the short action names', () => {
		expect(description.properties.filter((p) => p.name === 'toolDescription')).toHaveLength(operations.length);
		expect(description.properties.some((p) => p.name === 'descriptionType')).toBe(false);
	});

	it('gives the model a description of its own per operation: what it does, what it returns, cost and time for create', () => {
		const texts = operations.map((operation) => toolParameters({ operation }).toolDescription as string);
		expect(new Set(texts).size).toBe(operations.length);
		for (const text of texts) expect(text).toMatch(/task_id/);
		expect(texts[0]).toMatch(/credits/);
		expect(texts[0]).toMatch(/seconds/);
		expect(texts[0]).toMatch(/image_urls/);
		expect(texts[1]).toMatch(/costs nothing/);
		expect(texts[2]).toMatch(/[Ww]aits/);
	});

	it('shows the tool description only in the tool variant', () => {
		for (const operation of operations) expect(visibleParameters({ operation })).not.toHaveProperty('toolDescription');
	});
});
