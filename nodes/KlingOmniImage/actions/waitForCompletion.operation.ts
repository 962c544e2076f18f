import type { IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { optionsProperty, taskIdProperty } from '../descriptions/common';
import { readTaskId } from '../helpers/taskId';
import { TaskRunner, type ItemOutcome } from '../helpers/taskRunner';
import type { OperationContext } from './context';

export const description: INodeProperties[] = [
	taskIdProperty('waitForCompletion'),
	optionsProperty('waitForCompletion', { polling: true }),
];

/** Polls all given tasks together until each succeeds or fails; never creates a task. */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<ItemOutcome[]> {
	const prepared = await context.prepare(async (itemIndex) => ({
		itemIndex,
		taskId: readTaskId(this, itemIndex),
	}));
	const runner = new TaskRunner(this, context.session, { ...context.settings, waitForCompletion: true });
	return context.merge(prepared, await runner.run(prepared.jobs));
}
