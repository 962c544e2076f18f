import type { IExecuteFunctions, INodeProperties } from 'n8n-workflow';

import { operationProperties, taskIdProperty } from '../descriptions/common';
import type { ItemOutcome } from '../runner/jobTypes';
import { TaskRunner } from '../runner/taskRunner';
import type { OperationContext } from './operationContext';
import { readTaskId } from './readTaskId';

export const description: INodeProperties[] = operationProperties('waitForCompletion', [taskIdProperty], {
	polling: true,
});

/** Polls all given tasks together until each succeeds or fails; never creates a task. */
export async function execute(this: IExecuteFunctions, context: OperationContext): Promise<ItemOutcome[]> {
	const prepared = await context.prepare(async (itemIndex) => ({
		kind: 'existing' as const,
		itemIndex,
		taskId: readTaskId(this, itemIndex),
	}));
	const runner = new TaskRunner(this, context.session, { ...context.settings, waitForCompletion: true });
	return context.merge(prepared, await runner.run(prepared.jobs));
}
