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
