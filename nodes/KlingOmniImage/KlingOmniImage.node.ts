import type { IExecuteFunctions, INodeExecutionData, INodeType, INodeTypeDescription } from 'n8n-workflow';
import { NodeConnectionTypes } from 'n8n-workflow';

import * as createOmniImage from './actions/createOmniImage.operation';
import * as getTask from './actions/getTask.operation';
import { router } from './actions/router';
import * as waitForCompletion from './actions/waitForCompletion.operation';
import { toolDescriptionProperties } from './descriptions/tool';
import { SHARED_DESCRIPTION } from '../shared/nodeDescription';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../shared/request/retry';

export class KlingOmniImage implements INodeType {
	/**
	 * n8n calls `execute` with its own context as `this`, so the node instance cannot hold settings
	 * for it; the retry policy is closed over instead. n8n constructs the node without arguments
	 * (the default policy); tests pass a faster one.
	 */
	execute: (this: IExecuteFunctions) => Promise<INodeExecutionData[][]>;

	constructor(retryPolicy: RetryPolicy = DEFAULT_RETRY_POLICY) {
		this.execute = async function (this: IExecuteFunctions) {
			return await router.call(this, retryPolicy);
		};
	}

	description: INodeTypeDescription = {
		displayName: 'Kling Omni Image (CometAPI)',
		name: 'klingOmniImage',
		icon: { light: 'file:klingOmniImage.svg', dark: 'file:klingOmniImage.dark.svg' },
		group: ['transform'],
		subtitle:
			'={{ {"createOmniImage": "Create Omni Image", "getTask": "Get Task", "waitForCompletion": "Wait for Completion"}[$parameter["operation"]] }}',
		description: 'Generate images with Kling Omni Image through CometAPI',
		defaults: { name: 'Kling Omni Image' },
		usableAsTool: true,
		...SHARED_DESCRIPTION,
		inputs: [NodeConnectionTypes.Main],
		properties: [
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				options: [
					{
						name: 'Create Omni Image',
						value: 'createOmniImage',
						action: 'Create an omni image',
						description: 'Generate images from a prompt and optional reference images',
					},
					{
						name: 'Get Task',
						value: 'getTask',
						action: 'Get a task',
						description: "Read a task's status and results, optionally downloading its images",
					},
					{
						name: 'Wait for Completion',
						value: 'waitForCompletion',
						action: 'Wait for a task to complete',
						description: 'Poll a task until it succeeds or fails, then download its images',
					},
				],
				default: 'createOmniImage',
			},
			// Only in the AI agent tool variant: what the model is told, per operation.
			...toolDescriptionProperties,
			...createOmniImage.description,
			...getTask.description,
			...waitForCompletion.description,
		],
	};
}
