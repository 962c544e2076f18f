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

/** The answer to a callback that is not for one of this trigger's tasks (no query, nothing started). */
export const NOT_FOR_THIS_TRIGGER = {
	httpStatus: 403,
	message:
		'This callback is not for a task created for this trigger: set the trigger\'s URL as Callback URL in Create Omni Image, which adds the task\'s token',
};

const EXPIRED = {
	httpStatus: 403,
	message: 'This callback\'s token is older than the tasks this trigger remembers: it starts nothing',
};

function requestPath(request: CallbackRequest): string {
	return request.originalUrl ?? request.url ?? '';
}

/** Reads the token and the URL it must have been made for; refuses at once when there is none. */
export function readAccess(request: CallbackRequest): Access {
	const token = parseToken(request.query?.[TOKEN_PARAMETER]);
	const binding = urlBinding(requestPath(request));
	if (!token || !binding) return { ok: false, ...NOT_FOR_THIS_TRIGGER };
	return { ok: true, token, binding };
}

/** Whether the token was made for the task with this external task ID. */
export function allows(key: TokenKey, access: Extract<Access, { ok: true }>, externalTaskId: string | null | undefined): boolean {
	return !!externalTaskId && tokenMatches(key, access.token, access.binding, externalTaskId);
}

/**
 * Checks the token before anything is queried: made for this trigger, for the task the body names
 * (when it names its external task ID), and not older than the marks kept of emitted tasks or than
 * a mark already dropped (such a token may belong to a task emitted long ago: a replay of it must
 * start nothing). Returns the refusal, or undefined when the callback may be checked with the API.
 */
export function refuseBeforeQuery(
	key: TokenKey,
	access: Extract<Access, { ok: true }>,
	claimedExternalTaskId: string | undefined,
	marks: { now: number; retentionMs: number; droppedThrough: number | undefined },
): { httpStatus: number; message: string } | undefined {
	if (claimedExternalTaskId !== undefined && !allows(key, access, claimedExternalTaskId)) return NOT_FOR_THIS_TRIGGER;
	const { issuedAt } = access.token;
	if (marks.now - issuedAt > marks.retentionMs) return EXPIRED;
	if (marks.droppedThrough !== undefined && issuedAt <= marks.droppedThrough) return EXPIRED;
	return undefined;
}
