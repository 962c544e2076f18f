import type { IExecuteFunctions, INodeExecutionData } from 'n8n-workflow';
import { NodeOperationError } from 'n8n-workflow';

import { withoutItem } from '../../shared/errors';
import type { RetryPolicy } from '../../shared/request/retry';
import { modelResultItem } from '../../shared/task/output';
import type { ItemFailure, ItemOutcome } from '../runner/jobTypes';
import { createOperationContext, type OperationContext } from './operationContext';
import * as createOmniImage from './createOmniImage.operation';
import * as getTask from './getTask.operation';
import * as waitForCompletion from './waitForCompletion.operation';

/** The value n8n gives its own "Custom API Call" entry of the Operation list. */
const CUSTOM_API_CALL = '__CUSTOM_API_CALL__';

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

/**
 * Whether the node runs as an AI agent's tool. n8n names the tool variant `<name>Tool` and recognises tool
 * types by that suffix itself (`isToolType`). `isToolExecution()` alone is not enough: it is only true when a
 * tool runs inside its agent's process (e.g. under an agent that is itself a tool), not when the AI Agent v3
 * has the engine run the tool, and n8n 1.x lacks it.
 */
export function isToolMode(ctx: IExecuteFunctions): boolean {
	if (ctx.getNode().type.endsWith('Tool')) return true;
	const isToolExecution = (ctx as Partial<Pick<IExecuteFunctions, 'isToolExecution'>>).isToolExecution;
	return typeof isToolExecution === 'function' && isToolExecution.call(ctx) === true;
}

/**
 * An agent passes only an error's message to its model: the description (what to change) goes into the
 * message, and the [item N] suffix, which means nothing to a model, goes.
 */
function forModel(error: unknown): unknown {
	if (!(error instanceof Error)) return error;
	const description = (error as { description?: unknown }).description;
	let message = withoutItem(error.message);
	if (typeof description === 'string' && description.trim() !== '' && !message.includes(description)) {
		message = `${message.replace(/[.:]$/, '')}. ${description}`;
	}
	error.message = message;
	return error;
}

export async function router(this: IExecuteFunctions, retry: RetryPolicy): Promise<INodeExecutionData[][]> {
	if (!isToolMode(this)) return await run.call(this, retry, false);
	try {
		return await run.call(this, retry, true);
	} catch (error) {
		throw forModel(error);
	}
}

async function run(this: IExecuteFunctions, retry: RetryPolicy, toolMode: boolean): Promise<INodeExecutionData[][]> {
	const operation = this.getNodeParameter('operation', 0) as string;
	const handler = operations[operation];
	if (operation === CUSTOM_API_CALL) {
		// n8n offers this for every node whose credential can authenticate any request; the call itself
		// is made by an HTTP Request node with this credential, as n8n's notice in the form says.
		throw new NodeOperationError(this.getNode(), 'Custom API Call runs in an HTTP Request node, not in this node', {
			description:
				'Add an HTTP Request node, set Authentication to "Predefined Credential Type", choose "CometAPI API" and your credential, and call any CometAPI endpoint.',
		});
	}
	if (!handler) {
		throw new NodeOperationError(this.getNode(), `The operation "${operation}" is not supported`);
	}
	const context = await createOperationContext(this, retry);
	const outcomes = await handler.call(this, context);

	const output: INodeExecutionData[] = [];
	for (const outcome of outcomes) {
		if (!('error' in outcome)) {
			// As a tool: one short JSON item per task for the model (see modelResultItem).
			if (toolMode) output.push(modelResultItem(outcome.items, outcome.itemIndex));
			else output.push(...outcome.items);
		} else if (context.settings.failFast) throw outcome.error;
		else output.push(errorItem(toolMode ? { ...outcome, error: forModel(outcome.error) as ItemFailure['error'] } : outcome));
	}
	return [output];
}
