import type { INode, NodeOperationError } from 'n8n-workflow';

import { itemError } from './index';

/** An item whose create waited for a slot of the account's parallel-task limit and was never sent. */
export function neverCreatedError(node: INode, itemIndex: number, reason: string): NodeOperationError {
	return itemError(
		node,
		`The task was never created, so nothing was charged: ${reason} while waiting for a free slot of your account's parallel-task limit`,
		itemIndex,
		'Other tasks of your account (this run or other workflows) held every slot. Run the item again later, raise "Max Wait Time", or run fewer tasks at once.',
	);
}

/** Added to the first failure of a run that stops there: the items whose create was never sent. */
export function neverSentSummary(itemIndexes: number[]): string {
	return `Items never sent (nothing charged for them): ${itemIndexes.join(', ')}.`;
}

/** Added to the first failure of a run that stops there: creates that may have reached the API. */
export function mayExistSummary(creates: Array<{ itemIndex: number; externalTaskId?: string }>): string {
	const list = creates.map(({ itemIndex, externalTaskId }) =>
		externalTaskId ? `item ${itemIndex} (external task ID "${externalTaskId}")` : `item ${itemIndex}`,
	);
	return `Creates that may have reached CometAPI and may be charged (check your task log before running them again): ${list.join('; ')}.`;
}
