import type { INode } from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

export type NodeError = NodeOperationError | NodeApiError;

/** Every message about one input item ends with this, so a user can find the item in a batch. */
export function withItem(message: string, itemIndex: number): string {
	return `${message} [item ${itemIndex}]`;
}

/**
 * n8n's error classes swap a message that mentions ECONNRESET, ETIMEDOUT, … for a generic text,
 * which would drop what matters here: that a task may exist, which URL, which item.
 */
export function keepMessage<E extends Error>(error: E, message: string): E {
	error.message = message;
	return error;
}

/** A user-facing error about one input item. */
export function itemError(node: INode, message: string, itemIndex: number, description?: string): NodeOperationError {
	const text = withItem(message, itemIndex);
	return keepMessage(new NodeOperationError(node, text, { itemIndex, description }), text);
}

/** n8n's own error types pass through; anything unexpected becomes a NodeOperationError for the item. */
export function asNodeError(node: INode, error: unknown, itemIndex: number): NodeError {
	if (error instanceof NodeOperationError || error instanceof NodeApiError) return error;
	return new NodeOperationError(node, error as Error, { itemIndex });
}
