import type { INode } from 'n8n-workflow';
import type { NodeOperationError } from 'n8n-workflow';

import { itemError } from './index';

export function stoppedWaitingError(node: INode, taskId: string, itemIndex: number): NodeOperationError {
	return itemError(
		node,
		`Stopped waiting for task ${taskId}`,
		itemIndex,
		`The task was not cancelled at CometAPI. Pick it up later with "Wait for Completion" and task ID ${taskId}.`,
	);
}

export function waitTimeoutError(
	node: INode,
	taskId: string,
	itemIndex: number,
	maxWaitMs: number,
	last: { status?: string; error?: Error },
): NodeOperationError {
	const state = last.status ? `still "${last.status}"` : 'not finished';
	const lastError = last.error ? ` The last query failed: ${last.error.message}.` : '';
	return itemError(
		node,
		`Task ${taskId} is ${state} after waiting ${Math.round(maxWaitMs / 1000)} s`,
		itemIndex,
		`The task was not created again and may still finish.${lastError} Pick it up later with "Wait for Completion" (or "Get Task") and task ID ${taskId}, or raise "Max Wait Time".`,
	);
}

export function taskFailedError(node: INode, taskId: string, reason: string | null, itemIndex: number): NodeOperationError {
	return itemError(
		node,
		`Kling task ${taskId} failed: ${reason ?? 'CometAPI gave no reason'}`,
		itemIndex,
		'The provider rejected or could not finish the task. Adjust the prompt or reference images and try again.',
	);
}

export function missingTaskIdError(node: INode, itemIndex: number, externalTaskId?: string): NodeOperationError {
	const lookup = externalTaskId ? ` Look for external task ID "${externalTaskId}" in your CometAPI task log.` : '';
	return itemError(
		node,
		'CometAPI accepted the create request but sent no task ID: the task may have been created and charged',
		itemIndex,
		`It was not sent again, so that nothing is paid for twice.${lookup}`,
	);
}

export function downloadError(
	node: INode,
	taskId: string,
	imageIndex: number,
	reason: string,
	itemIndex: number,
): NodeOperationError {
	return itemError(
		node,
		`Could not download image ${imageIndex} of task ${taskId}: ${reason}`,
		itemIndex,
		`The task succeeded and was charged. Run "Get Task" with task ID ${taskId} and "Download Images" on to try again while its URLs are valid.`,
	);
}

export function missingWatermarkError(node: INode, taskId: string, imageIndex: number, itemIndex: number): NodeOperationError {
	return itemError(
		node,
		`Task ${taskId} has no watermarked image ${imageIndex} to download`,
		itemIndex,
		'Turn on "Watermark" when creating the task, or turn off "Download Watermarked Image" to download the originals.',
	);
}

/** Added to the first failure of a run that stops there: the other items' tasks may be paid for. */
export function otherTasksSummary(others: Array<{ itemIndex: number; taskId: string; state: string }>): string {
	const list = others.map((entry) => `item ${entry.itemIndex}: task ${entry.taskId} (${entry.state})`);
	return `The run stopped at this error. Tasks already created for other items (get them with "Get Task" or "Wait for Completion"): ${list.join('; ')}.`;
}

export function otherTaskAnswerError(node: INode, askedId: string, answeredId: string, itemIndex: number): NodeOperationError {
	return itemError(
		node,
		`CometAPI answered the query of task ${askedId} with task ${answeredId}: refused`,
		itemIndex,
		`An answer about another task is never used, so no other task's images are downloaded. Run the item again; if this repeats, check the Base URL in the CometAPI credential.`,
	);
}

const CHARGED_NO_IMAGE =
	'The task succeeded, so it was charged. Run "Get Task" with this task ID later to see whether CometAPI lists its images by then, or contact CometAPI support with the task ID.';

export function noImagesError(node: INode, taskId: string, itemIndex: number): NodeOperationError {
	return itemError(node, `Task ${taskId} succeeded but CometAPI sent no image URL`, itemIndex, CHARGED_NO_IMAGE);
}

export function missingImageUrlError(node: INode, taskId: string, imageIndex: number, itemIndex: number): NodeOperationError {
	return itemError(node, `Task ${taskId} succeeded but CometAPI sent no URL for image ${imageIndex}`, itemIndex, CHARGED_NO_IMAGE);
}

/** For the poller: a status that stays unknown will not turn into a result by waiting longer. */
export function unknownStatusError(node: INode, taskId: string, status: string, itemIndex: number): NodeOperationError {
	const what = status === 'unknown' ? 'no status' : `the status "${status}"`;
	return itemError(
		node,
		`Task ${taskId} has a status this node does not know (${what})`,
		itemIndex,
		`CometAPI answered with ${what} instead of submitted, processing, succeed or failed. The task was not created again and may still finish: check it later with "Get Task" and task ID ${taskId}.`,
	);
}
