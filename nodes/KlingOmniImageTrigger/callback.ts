import type { IDataObject } from 'n8n-workflow';

import { readStatus } from '../shared/task/task';

/**
 * A callback body is a few kilobytes (a task object with at most nine image URLs); anything much
 * larger is not from the provider and is refused before it is read any further.
 */
export const MAX_CALLBACK_BYTES = 64 * 1024;

/** Task ids as CometAPI and Kling issue them; anything else is refused before a request is sent. */
const TASK_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/**
 * What a callback says: only the task id is used for anything but routing, the rest is re-read
 * from the API. The status is read as the action node reads it ('unknown' when none is given).
 */
export type CallbackClaim =
	| { ok: true; taskId: string; claimedStatus: string; externalTaskId?: string }
	| { ok: false; httpStatus: number; message: string };

/** The parts of n8n's request the trigger reads. */
export interface CallbackRequest {
	body?: unknown;
	rawBody?: Buffer;
	headers: Record<string, string | string[] | undefined>;
	query?: Record<string, unknown>;
	/** The path the caller used, with its query (Express keeps it in originalUrl). */
	originalUrl?: string;
	url?: string;
}

function refuse(httpStatus: number, message: string): CallbackClaim {
	return { ok: false, httpStatus, message };
}

function isObject(value: unknown): value is IDataObject {
	return !!value && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value);
}

function bodySize(request: CallbackRequest): number | undefined {
	if (request.rawBody) return request.rawBody.length;
	const declared = Number(request.headers['content-length']);
	return Number.isFinite(declared) ? declared : undefined;
}

/**
 * The body as JSON: n8n has parsed `application/json` already; a body sent as text or without a
 * content type is parsed here from the raw bytes.
 */
function parsedBody(request: CallbackRequest): unknown {
	const { body, rawBody } = request;
	if (isObject(body) && Object.keys(body).length > 0) return body;
	if (Array.isArray(body)) return body;
	const text = typeof body === 'string' && body.trim() ? body : rawBody?.toString('utf8');
	if (text === undefined || !text.trim()) return undefined;
	try {
		return JSON.parse(text.replace(/^\uFEFF/, '')) as unknown;
	} catch {
		return Symbol.for('not-json');
	}
}

/** The task object: bare, or under `data` of a `{code, message, data}` envelope. */
function taskObject(body: IDataObject): IDataObject {
	if (body.task_id === undefined && isObject(body.data)) return body.data;
	return body;
}

/** Reads a callback: the task id it names, and the status it claims (never trusted for output). */
export function readCallback(request: CallbackRequest): CallbackClaim {
	const size = bodySize(request);
	if (size !== undefined && size > MAX_CALLBACK_BYTES) {
		return refuse(413, `The callback body is ${size} bytes, over the ${MAX_CALLBACK_BYTES}-byte limit`);
	}
	const body = parsedBody(request);
	if (body === Symbol.for('not-json')) return refuse(400, 'The callback body is not JSON');
	if (body === undefined) return refuse(400, 'The callback body is empty');
	if (!isObject(body)) return refuse(400, 'The callback body must be a JSON object (a Kling task)');
	const task = taskObject(body);
	const rawId = task.task_id;
	const taskId = typeof rawId === 'string' || typeof rawId === 'number' ? String(rawId).trim() : '';
	if (!taskId) return refuse(400, 'The callback names no task_id');
	if (!TASK_ID_PATTERN.test(taskId)) return refuse(400, 'The callback\'s task_id is not a task ID');
	const claimedStatus = readStatus(typeof task.task_status === 'string' ? task.task_status : undefined);
	const info = isObject(task.task_info) ? task.task_info : {};
	const external = info.external_task_id;
	const externalTaskId = typeof external === 'string' || typeof external === 'number' ? String(external) : undefined;
	return { ok: true, taskId, claimedStatus, externalTaskId };
}
