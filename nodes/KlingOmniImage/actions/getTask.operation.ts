import type { IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { optionsProperty, taskIdProperty } from '../descriptions/common';
import { downloadTaskImages } from '../helpers/download';
import { imageItems, taskItem } from '../helpers/output';
import { normalizeTask } from '../helpers/task';
import { readTaskId } from '../helpers/taskId';
import { asNodeError } from '../helpers/errors';
import type { ItemOutcome, TaskJob } from '../helpers/taskRunner';
import { queryTask } from '../transport';
import type { OperationContext } from './context';

export const description: INodeProperties[] = [
	taskIdProperty('getTask'),
	{
		displayName: 'Download Images',
		name: 'downloadImages',
		type: 'boolean',
		default: false,
		description: 'Whether to download the images as binary data when the task has succeeded',
		displayOptions: { show: { operation: ['getTask'] } },
	},
	optionsProperty('getTask', { polling: false, downloadToggle: 'downloadImages' }),
];

async function getOne(this: IExecuteFunctions, context: OperationContext, job: TaskJob): Promise<ItemOutcome> {
	const { itemIndex } = job;
	const taskId = job.taskId as string;
	try {
		const task = normalizeTask(await queryTask.call(this, context.session, itemIndex, taskId), taskId);
		const download = this.getNodeParameter('downloadImages', itemIndex, false) as boolean;
		if (!download || task.status !== 'succeed') return { itemIndex, items: [taskItem(task, itemIndex)] };
		const downloads = await downloadTaskImages(this, context.session, task, itemIndex, context.settings.download);
		return { itemIndex, items: imageItems(task, downloads, itemIndex, context.settings.download) };
	} catch (error) {
		return { itemIndex, error: asNodeError(this, error, itemIndex), taskId };
	}
}

/** Reads each task's current state once, all items at once within the request limit. */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<ItemOutcome[]> {
	const prepared = await context.prepare(async (itemIndex) => ({
		itemIndex,
		taskId: readTaskId(this, itemIndex),
	}));
	const outcomes = await Promise.all(prepared.jobs.map(async (job) => await getOne.call(this, context, job)));
	return context.merge(prepared, outcomes);
}
