import type { IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { queryTask } from '../../shared/api/client';
import { asNodeError } from '../../shared/errors';
import { taskOutput } from '../../shared/task/output';
import { normalizeTask } from '../../shared/task/task';
import { operationProperties, taskIdProperty } from '../descriptions/common';
import { RunProgress } from '../runner/runProgress';
import type { ItemOutcome, TaskJob } from '../runner/jobTypes';
import type { OperationContext } from './operationContext';
import { readTaskId } from './readTaskId';

const fields: INodeProperties[] = [
	taskIdProperty,
	{
		displayName: 'Download Images',
		name: 'downloadImages',
		type: 'boolean',
		default: false,
		description: 'Whether to download the images as binary data when the task has succeeded',
	},
];

export const description = operationProperties('getTask', fields, { polling: false, downloadToggle: 'downloadImages' });

type ExistingJob = Extract<TaskJob, { kind: 'existing' }>;

async function getOne(
	this: IExecuteFunctions,
	context: OperationContext,
	progress: RunProgress,
	{ itemIndex, taskId }: ExistingJob,
): Promise<ItemOutcome> {
	try {
		const task = normalizeTask(await queryTask(this, progress.session, itemIndex, taskId), taskId);
		const download = this.getNodeParameter('downloadImages', itemIndex, false) as boolean;
		const images = download ? context.settings.download : undefined;
		return { itemIndex, items: await taskOutput(this, progress.session, task, itemIndex, images) };
	} catch (error) {
		const nodeError = asNodeError(this.getNode(), error, itemIndex);
		// Once the run has stopped at another item's failure, this one was only cut short.
		if (progress.stopSignal.aborted) return { itemIndex, error: nodeError, taskId };
		return progress.failed(itemIndex, nodeError, taskId);
	}
}

/** Reads each task's current state once, all items at once within the request limit. */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<ItemOutcome[]> {
	const prepared = await context.prepare(async (itemIndex) => ({
		kind: 'existing' as const,
		itemIndex,
		taskId: readTaskId(this, itemIndex),
	}));
	const progress = new RunProgress(context.session, context.settings.failFast);
	const outcomes = await Promise.all(
		prepared.jobs.map(async (job) => await getOne.call(this, context, progress, job)),
	);
	progress.throwIfFailedFast();
	return context.merge(prepared, outcomes);
}
