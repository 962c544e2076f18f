import type { IExecuteFunctions } from 'n8n-workflow';

import { itemError } from '../../shared/errors';

/** The item's task id, trimmed; an empty one is a clear error before any request. */
export function readTaskId(ctx: IExecuteFunctions, itemIndex: number): string {
	const value = ctx.getNodeParameter('taskId', itemIndex, '') as unknown;
	if (value !== null && typeof value === 'object') {
		throw itemError(ctx.getNode(), 'Task ID must be text, got an object', itemIndex, 'Map the task_id field itself, e.g. {{ $json.task_id }}.');
	}
	if (typeof value === 'number' && !Number.isSafeInteger(value)) {
		// 874512093471236096 arrives as …236100: querying it would ask for another task.
		throw itemError(
			ctx.getNode(),
			`Task ID ${String(value)} arrived as a number too large to be exact; the real ID may differ`,
			itemIndex,
			'Keep task IDs as text: map the task_id field as it is, e.g. {{ $json.task_id }}, and format a sheet column holding task IDs as text.',
		);
	}
	const taskId = typeof value === 'string' || typeof value === 'number' ? String(value).trim() : '';
	if (!taskId) {
		throw itemError(
			ctx.getNode(),
			'Task ID is empty',
			itemIndex,
			'Map the task_id of a Create Omni Image output, e.g. {{ $json.task_id }}, or paste a task ID.',
		);
	}
	return taskId;
}
