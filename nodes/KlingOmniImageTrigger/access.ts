import {
	parseToken,
	TOKEN_PARAMETER,
	tokenMatches,
	urlBinding,
	type ParsedToken,
	type TokenKey,
} from '../shared/callback/token';
import type { CallbackRequest } from './callback';

/**
 * Which callbacks this trigger takes: those whose URL carries a token that Create Omni Image made
 * for the task and for this trigger's URL (see shared/callback/token.ts).
 */
export type Access =
	| { ok: true; token: ParsedToken; binding: string }
	| { ok: false; httpStatus: number; message: string };

const NOT_FOR_THIS_TRIGGER =
	'This callback is not for a task created for this trigger: set the trigger\'s URL as Callback URL in Create Omni Image, which adds the task\'s token';

function requestPath(request: CallbackRequest): string {
	return request.originalUrl ?? request.url ?? '';
}

/** Reads the token and the URL it must have been made for; refuses at once when there is none. */
export function readAccess(request: CallbackRequest): Access {
	const token = parseToken(request.query?.[TOKEN_PARAMETER]);
	const binding = urlBinding(requestPath(request));
	if (!token || !binding) return { ok: false, httpStatus: 403, message: NOT_FOR_THIS_TRIGGER };
	return { ok: true, token, binding };
}

/** Whether the token was made for the task with this external task ID. */
export function allows(key: TokenKey, access: Extract<Access, { ok: true }>, externalTaskId: string | null | undefined): boolean {
	return !!externalTaskId && tokenMatches(key, access.token, access.binding, externalTaskId);
}

export function refusal(): { httpStatus: number; message: string } {
	return { httpStatus: 403, message: NOT_FOR_THIS_TRIGGER };
}

/**
 * A token older than the marks kept of emitted tasks, or older than a mark already dropped, may
 * belong to a task emitted long ago: a replay of it must start nothing.
 */
export function isExpired(token: ParsedToken, now: number, retentionMs: number, droppedThrough: number | undefined): boolean {
	if (now - token.issuedAt > retentionMs) return true;
	return droppedThrough !== undefined && token.issuedAt <= droppedThrough;
}
