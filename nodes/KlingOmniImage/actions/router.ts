import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import type { RetryPolicy } from '../../shared/request/retry';
import type { ItemFailure, ItemOutcome } from '../runner/jobs';
import { createOperationContext, type OperationContext } from './context';
import * as createOmniImage from './createOmniImage.operation';
import * as getTask from './getTask.operation';
import * as waitForCompletion from './waitForCompletion.operation';

type OperationHandler = (this: IExecuteFunctions, context: OperationContext) => Promise<ItemOutcome[]>;

const operations: Record<string, OperationHandler> = {
	createOmniImage: createOmniImage.execute,
	getTask: getTask.execute,
	waitForCompletion: waitForCompletion.execute,
};

/** An error item in place of the failed input item, as "Continue On Fail" promises. */
function errorItem({ error, itemIndex, taskId }: ItemFailure): INodeExecutionData {
	const json: INodeExecutionData['json'] = { error: error.message };
	if (error.description) json.description = error.description;
	if (taskId) json.task_id = taskId;
	return { json, pairedItem: { item: itemIndex } };
}

export async function router(this: IExecuteFunctions, retry: RetryPolicy): Promise<INodeExecutionData[][]> {
	const operation = this.getNodeParameter('operation', 0) as string;
	const handler = operations[operation];
	if (!handler) {
		throw new NodeOperationError(this.getNode(), `The operation "${operation}" is not supported`);
	}
	const context = await createOperationContext(this, retry);
	const outcomes = await handler.call(this, context);

	const output: INodeExecutionData[] = [];
	for (const outcome of outcomes) {
		if (!('error' in outcome)) output.push(...outcome.items);
		else if (context.settings.failFast) throw outcome.error;
		else output.push(errorItem(outcome));
	}
	return [output];
}
