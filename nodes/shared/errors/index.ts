import type { INode } from 'n8n-workflow';
import { NodeApiError, NodeOperationError } from 'n8n-workflow';

import { displayBaseUrl } from '../contract';

export type NodeError = NodeOperationError | NodeApiError;

const ITEM_SUFFIX = / \[item \d+\]$/;

/** Every message about one input item ends with this, so a user can find the item in a batch. */
export function withItem(message: string, itemIndex: number): string {
	return `${message} [item ${itemIndex}]`;
}

/** The message without its item suffix, where no batch of input items is in sight (a model, a trigger's output). */
export function withoutItem(message: string): string {
	return message.replace(ITEM_SUFFIX, '');
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

/** Replaces a secret in texts that came from outside (a provider may echo the API key back). */
export type Redactor = (text: string) => string;

/** The redactor for one secret; a value too short to be a key would only garble texts. */
export function secretRedactor(secret: unknown): Redactor {
	if (typeof secret !== 'string' || secret.trim().length < 8) return (text) => text;
	const key = secret.trim();
	return (text) => (text.includes(key) ? text.split(key).join('[redacted]') : text);
}

/** The same value with every string in it redacted (an API answer before it becomes output). */
export function redactStrings<T>(value: T, redact: Redactor): T {
	if (typeof value === 'string') return redact(value) as T;
	if (Array.isArray(value)) return value.map((entry: unknown) => redactStrings(entry, redact)) as T;
	if (value && typeof value === 'object') {
		return Object.fromEntries(Object.entries(value).map(([name, entry]) => [name, redactStrings(entry, redact)])) as T;
	}
	return value;
}

/** Where a redirect pointed, as host and port only: a Location may carry credentials or tokens. */
function redirectTarget(location: unknown, requestUrl: string): string {
	if (typeof location !== 'string' || !location) return 'an address it did not name';
	try {
		return new URL(location, requestUrl).host || 'an address without a host';
	} catch {
		return 'an unreadable address';
	}
}

/**
 * The Base URL a redirect implies, when it points to the same API path elsewhere (`http:` to `https:`,
 * another host, a path prefix added or dropped); shown without credentials or query.
 */
function redirectedBaseUrl(location: unknown, requestUrl: string, path: string): string | undefined {
	if (typeof location !== 'string' || !location) return undefined;
	try {
		const target = new URL(location, requestUrl);
		const apiPath = new URL(path, 'http://x').pathname;
		if (!target.pathname.endsWith(apiPath)) return undefined;
		return displayBaseUrl(`${target.origin}${target.pathname.slice(0, -apiPath.length)}`);
	} catch {
		return undefined;
	}
}

/**
 * An API call answered with a redirect. It is never followed: n8n's HTTP helper would send the
 * API key (and a create's body) along to whatever host the redirect names.
 */
export function redirectRefusedError(
	node: INode,
	call: { label: string; itemIndex: number; isCreate: boolean; path: string },
	redirect: { status: number; location: unknown; requestUrl: string },
): NodeOperationError {
	const target = redirectTarget(redirect.location, redirect.requestUrl);
	const notSent = call.isCreate ? ' The create request was not sent there or again.' : '';
	const implied = redirectedBaseUrl(redirect.location, redirect.requestUrl, call.path);
	const change = implied
		? `If you trust ${target}, change the Base URL in the CometAPI credential to ${implied}.`
		: 'Check the Base URL in the CometAPI credential: if you trust the address the redirect names, use it as the Base URL.';
	return itemError(
		node,
		`CometAPI answered ${call.label} with a redirect (HTTP ${redirect.status}) to ${target}, which was not followed`,
		call.itemIndex,
		`API requests never follow redirects, so the API key stays with the Base URL.${notSent} ${change}`,
	);
}
