import type { IExecuteFunctions, INodeProperties } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { optionsProperty } from '../descriptions/common';
import { CreateRequestBuilder } from '../helpers/createRequest';
import { TaskRunner, type ItemOutcome } from '../helpers/taskRunner';
import type { OperationContext } from './context';

const show = { operation: ['createOmniImage'] };

export const description: INodeProperties[] = [
	{
		displayName: 'Prompt',
		name: 'prompt',
		type: 'string',
		typeOptions: { rows: 4 },
		required: true,
		default: '',
		placeholder: 'e.g. A cinematic portrait of &lt;&lt;&lt;image_1&gt;&gt;&gt; in a sunlit studio',
		description:
			'What to generate, at most 2,500 characters. Cite reference images as &lt;&lt;&lt;image_1&gt;&gt;&gt;, &lt;&lt;&lt;image_2&gt;&gt;&gt;, … and elements as &lt;&lt;&lt;element_1&gt;&gt;&gt;, … in list order.',
		displayOptions: { show },
	},
	{
		displayName: 'Model',
		name: 'modelName',
		type: 'options',
		options: [
			{ name: 'Kling 3.0 Omni', value: 'kling-v3-omni' },
			{ name: 'Kling Image O1', value: 'kling-image-o1' },
		],
		default: 'kling-image-o1',
		displayOptions: { show },
	},
	{
		displayName: 'Reference Images',
		name: 'referenceImages',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true, sortable: true },
		placeholder: 'Add Reference Image',
		default: {},
		description:
			'Images the prompt can cite as &lt;&lt;&lt;image_1&gt;&gt;&gt;, &lt;&lt;&lt;image_2&gt;&gt;&gt;, …: JPEG or PNG, at most 10 MB, each side at least 300 px',
		displayOptions: { show },
		options: [
			{
				name: 'image',
				displayName: 'Image',
				values: [
					{
						displayName: 'Source',
						name: 'source',
						type: 'options',
						options: [
							{
								name: 'URL',
								value: 'url',
								description: 'A public https URL the API downloads itself',
							},
							{
								name: 'Binary Field',
								value: 'binary',
								description: 'A file from the incoming item, sent as Base64',
							},
						],
						default: 'url',
					},
					{
						displayName: 'Image URL',
						name: 'url',
						type: 'string',
						default: '',
						placeholder: 'e.g. https://example.com/reference.png',
						displayOptions: { show: { source: ['url'] } },
					},
					{
						displayName: 'Input Binary Field',
						name: 'binaryPropertyName',
						type: 'string',
						default: 'data',
						hint: 'The name of the input binary field containing the image',
						displayOptions: { show: { source: ['binary'] } },
					},
				],
			},
		],
	},
	{
		displayName: 'Elements',
		name: 'elements',
		type: 'fixedCollection',
		typeOptions: { multipleValues: true, sortable: true },
		placeholder: 'Add Element',
		default: {},
		description:
			'Kling element IDs the prompt can cite as &lt;&lt;&lt;element_1&gt;&gt;&gt;, …. Reference images and elements together: at most 10.',
		displayOptions: { show },
		options: [
			{
				name: 'element',
				displayName: 'Element',
				values: [
					{
						displayName: 'Element ID',
						name: 'elementId',
						type: 'string',
						default: '',
						description: 'ID of an element from a Kling element workflow',
					},
				],
			},
		],
	},
	{
		displayName: 'Resolution',
		name: 'resolution',
		type: 'options',
		options: [
			{ name: '1K', value: '1k' },
			{ name: '2K', value: '2k' },
			{ name: '4K', value: '4k' },
		],
		default: '1k',
		displayOptions: { show },
	},
	{
		displayName: 'Result Type',
		name: 'resultType',
		type: 'options',
		options: [
			{
				name: 'Series',
				value: 'series',
				description: 'A set of related images that belong together',
			},
			{ name: 'Single', value: 'single', description: 'Independent images from the same prompt' },
		],
		default: 'single',
		displayOptions: { show },
	},
	{
		displayName: 'Number of Images',
		name: 'n',
		type: 'number',
		typeOptions: { minValue: 1, maxValue: 9 },
		default: 1,
		description: 'How many independent images to generate (1–9)',
		displayOptions: { show: { ...show, resultType: ['single'] } },
	},
	{
		displayName: 'Series Amount',
		name: 'seriesAmount',
		type: 'number',
		typeOptions: { minValue: 2, maxValue: 9 },
		default: 4,
		description: 'How many images the series has (2–9)',
		displayOptions: { show: { ...show, resultType: ['series'] } },
	},
	{
		displayName: 'Aspect Ratio',
		name: 'aspectRatio',
		type: 'options',
		options: [
			{ name: '1:1', value: '1:1' },
			{ name: '16:9', value: '16:9' },
			{ name: '2:3', value: '2:3' },
			{ name: '21:9', value: '21:9' },
			{ name: '3:2', value: '3:2' },
			{ name: '3:4', value: '3:4' },
			{ name: '4:3', value: '4:3' },
			{ name: '9:16', value: '9:16' },
			{ name: 'Auto', value: 'auto', description: 'Let the model choose from the prompt and references' },
		],
		default: 'auto',
		displayOptions: { show },
	},
	{
		displayName: 'Wait for Completion',
		name: 'waitForCompletion',
		type: 'boolean',
		default: true,
		description:
			'Whether to wait for the task and output its images as binary data. Off: output the created task at once, for a later Wait for Completion.',
		displayOptions: { show },
	},
	{
		displayName: 'Additional Fields',
		name: 'additionalFields',
		type: 'collection',
		placeholder: 'Add Field',
		default: {},
		displayOptions: { show },
		options: [
			{
				displayName: 'Callback URL',
				name: 'callbackUrl',
				type: 'string',
				default: '',
				placeholder: 'e.g. https://example.com/webhook/kling',
				description: 'CometAPI calls this URL when the task status changes',
			},
			{
				displayName: 'External Task ID',
				name: 'externalTaskId',
				type: 'string',
				default: '',
				description: 'Your own ID for the task; must be unique in your account',
			},
			{
				displayName: 'Generate External Task ID',
				name: 'generateExternalTaskId',
				type: 'boolean',
				default: false,
				description:
					'Whether to give each task a unique external ID (n8n-{execution ID}-{item index}-{random}) when none is set, so a task whose create request got no answer can be found',
			},
			{
				displayName: 'Watermark',
				name: 'watermark',
				type: 'boolean',
				default: false,
				description: 'Whether the task should also return watermarked images (as watermark_url)',
			},
		],
	},
	optionsProperty('createOmniImage', { polling: true, downloadToggle: 'waitForCompletion' }),
];

/** Validates every item first (nothing is paid for on bad input), then runs all tasks together. */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<ItemOutcome[]> {
	const waitForCompletion = this.getNodeParameter('waitForCompletion', 0, true) as boolean;
	const requireWatermark = waitForCompletion && context.settings.download.watermarked;
	// External task IDs must be unique per account: a repeat within the run would be rejected anyway.
	const itemByExternalId = new Map<string, number>();
	const prepared = await context.prepare(async (itemIndex) => {
		const request = await new CreateRequestBuilder(this, itemIndex).build({ requireWatermark });
		const id = request.externalTaskId;
		if (id !== undefined) {
			const firstItem = itemByExternalId.get(id);
			if (firstItem !== undefined) {
				throw new NodeOperationError(
					this.getNode(),
					`External Task ID "${id}" is already used by item ${firstItem} of this run [item ${itemIndex}]`,
					{ itemIndex, description: 'CometAPI requires a unique external task ID per task. Map a per-item value, or turn on "Generate External Task ID".' },
				);
			}
			itemByExternalId.set(id, itemIndex);
		}
		return { itemIndex, create: request };
	});
	const runner = new TaskRunner(this, context.session, { ...context.settings, waitForCompletion });
	return context.merge(prepared, await runner.run(prepared.jobs));
}
