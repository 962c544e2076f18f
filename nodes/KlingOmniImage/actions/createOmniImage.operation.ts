import type { IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import {
	ASPECT_RATIOS,
	defaultOf,
	IMAGE_COUNTS,
	MODELS,
	RESOLUTIONS,
	RESULT_TYPES,
	type ResultType,
} from '../../shared/contract';
import { itemError } from '../../shared/errors';
import { operationProperties } from '../descriptions/common';
import type { ItemOutcome } from '../runner/jobTypes';
import { TaskRunner } from '../runner/taskRunner';
import { readSwitch, type OperationContext } from './operationContext';
import { CreateRequestBuilder } from './createRequest';

/** Number of Images (single) or Series Amount (series), shown for its own result type only. */
function imageCountProperty(resultType: ResultType, what: string): INodeProperties {
	const { parameter, label, min, max } = IMAGE_COUNTS[resultType];
	// A plain name: the n8n linter reads a default only from a literal, a name or a call.
	const defaultCount = IMAGE_COUNTS[resultType].default;
	return {
		displayName: label,
		name: parameter,
		type: 'number',
		typeOptions: { minValue: min, maxValue: max },
		default: defaultCount,
		description: `${what} (${min}–${max})`,
		displayOptions: { show: { resultType: [resultType] } },
	};
}

const fields: INodeProperties[] = [
	{
		displayName: 'Prompt',
		name: 'prompt',
		type: 'string',
		typeOptions: { rows: 4 },
		required: true,
		default: '',
		// A placeholder is plain text (descriptions are HTML, hence their entities).
		placeholder: 'e.g. A cinematic portrait of <<<image_1>>> in a sunlit studio',
		description:
			'What to generate, at most 2,500 characters. Cite reference images as &lt;&lt;&lt;image_1&gt;&gt;&gt;, &lt;&lt;&lt;image_2&gt;&gt;&gt;, … and elements as &lt;&lt;&lt;element_1&gt;&gt;&gt;, … in list order.',
	},
	{
		displayName: 'Model',
		name: 'modelName',
		type: 'options',
		options: MODELS,
		default: defaultOf(MODELS),
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
		options: RESOLUTIONS,
		default: defaultOf(RESOLUTIONS),
	},
	{
		displayName: 'Result Type',
		name: 'resultType',
		type: 'options',
		options: RESULT_TYPES,
		default: defaultOf(RESULT_TYPES),
	},
	imageCountProperty('single', 'How many independent images to generate'),
	imageCountProperty('series', 'How many images the series has'),
	{
		displayName: 'Aspect Ratio',
		name: 'aspectRatio',
		type: 'options',
		options: ASPECT_RATIOS,
		default: defaultOf(ASPECT_RATIOS),
	},
	{
		displayName: 'Wait for Completion',
		name: 'waitForCompletion',
		type: 'boolean',
		default: true,
		description:
			'Whether to wait for the task and output its images as binary data. Off: output the created task at once, for a later Wait for Completion.',
	},
	{
		displayName: 'Additional Fields',
		name: 'additionalFields',
		type: 'collection',
		placeholder: 'Add Field',
		default: {},
		options: [
			{
				displayName: 'Callback URL',
				name: 'callbackUrl',
				type: 'string',
				default: '',
				placeholder: 'e.g. https://n8n.example.com/webhook/3f9d…/kling',
				description: 'CometAPI POSTs the task to this URL whenever its status changes',
				hint: 'To get each finished task, with its images, in another workflow instead of waiting here: paste the Production URL of a Kling Omni Image (CometAPI) Trigger, publish that workflow, and turn Wait for Completion off',
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
];

export const description = operationProperties('createOmniImage', fields, { polling: true, downloadToggle: 'waitForCompletion' });

/** Validates every item first (nothing is paid for on bad input), then runs all tasks together. */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<ItemOutcome[]> {
	// Read once, from the first item: the items of a run share one polling loop.
	const waitForCompletion = readSwitch(this, 'waitForCompletion', 'Wait for Completion', true);
	const requireWatermark = waitForCompletion && context.settings.download.watermarked;
	// External task IDs must be unique per account: a repeat within the run would be rejected anyway.
	const itemByExternalId = new Map<string, number>();
	const prepared = await context.prepare(async (itemIndex) => {
		const request = await new CreateRequestBuilder(this, itemIndex, context.callbackKey).build({ requireWatermark });
		const id = request.externalTaskId;
		if (id !== undefined) {
			const firstItem = itemByExternalId.get(id);
			if (firstItem !== undefined) {
				throw itemError(
					this.getNode(),
					`External Task ID "${id}" is already used by item ${firstItem} of this run`,
					itemIndex,
					'CometAPI requires a unique external task ID per task. Map a per-item value, or turn on "Generate External Task ID".',
				);
			}
			itemByExternalId.set(id, itemIndex);
		}
		return { kind: 'create' as const, itemIndex, ...request };
	});
	const runner = new TaskRunner(this, context.session, { ...context.settings, waitForCompletion });
	return context.merge(prepared, await runner.run(prepared.jobs));
}
