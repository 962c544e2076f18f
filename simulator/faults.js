'use strict';
// Scriptable faults: validation, FIFO queues per route, and the responses of replacing faults.

const http = require('node:http');
const { JSON_TYPE, bufferResponse, jsonResponse, newRequestId } = require('./http');

const ALL = ['create', 'query', 'image'];
const API = ['create', 'query'];

// Which routes each fault type can hit.
const FAULT_ROUTES = {
	status: ALL,
	code: ALL,
	drop: [...ALL, 'callback'],
	dropMidBody: ALL,
	delay: [...ALL, 'callback'],
	malformed: ALL,
	contentType: ALL,
	truncate: ALL,
	oversize: ['image'],
	cometError: API,
	redirect: ALL,
	trickle: ALL,
};
// Types that still deliver the normal response (so a create behind them really creates the task).
const NORMAL_RESPONSE_FAULTS = new Set(['delay', 'dropMidBody', 'truncate', 'contentType', 'trickle']);
const FAULT_REQUIRED = {
	status: ['status'],
	code: ['code'],
	delay: ['ms'],
	contentType: ['contentType'],
	oversize: ['bytes'],
	cometError: ['status'],
	redirect: ['location'],
	trickle: ['intervalMs'],
};
const REDIRECT_STATUSES = [301, 302, 303, 307, 308];
const ROUTES = ['create', 'query', 'image', 'callback'];

/** Throws TypeError unless `fault` is a valid fault; returns it queued ({times, remaining}). */
function checkFault(fault) {
	const allowed = FAULT_ROUTES[fault?.type];
	if (!allowed) throw new TypeError(`Unknown fault type: ${fault?.type}`);
	if (!allowed.includes(fault.route)) {
		throw new TypeError(`Fault type '${fault.type}' cannot apply to route '${fault.route}'`);
	}
	for (const required of FAULT_REQUIRED[fault.type] ?? []) {
		if (fault[required] === undefined) throw new TypeError(`Fault type '${fault.type}' needs '${required}'`);
	}
	if (fault.type === 'redirect' && fault.status !== undefined && !REDIRECT_STATUSES.includes(fault.status)) {
		throw new TypeError(`Fault type 'redirect' needs status ${REDIRECT_STATUSES.join('/')}`);
	}
	const times = fault.times ?? 1;
	if (!Number.isInteger(times) || times < 1) throw new TypeError('Fault times must be a positive integer');
	return { ...fault, times, remaining: times };
}

/** FIFO queues per route; each fault applies to the next `times` requests on its route. */
function createFaultQueues() {
	const queues = Object.fromEntries(ROUTES.map((route) => [route, []]));
	return {
		add(fault) {
			const queued = checkFault(fault);
			queues[fault.route].push(queued);
			return queued;
		},
		take(route) {
			const queue = queues[route];
			const fault = queue[0];
			if (!fault) return undefined;
			if (--fault.remaining <= 0) queue.shift();
			return fault;
		},
		clear() {
			for (const queue of Object.values(queues)) queue.length = 0;
		},
	};
}

/** CometAPI gateway's own error envelope, as CometAPI documents it. */
function cometErrorBody({ message, errorType = 'comet_api_error', param = '', code = '' }) {
	return { error: { message, type: errorType, param, code } };
}

function statusFaultResponse(fault) {
	const headers = { ...(fault.headers ?? {}) };
	if (typeof fault.body === 'string') {
		return bufferResponse(fault.status, 'text/plain', Buffer.from(fault.body), headers);
	}
	const message = fault.message ?? http.STATUS_CODES[fault.status] ?? 'Error';
	const body = fault.body ?? { code: fault.code ?? fault.status, message, request_id: newRequestId() };
	return jsonResponse(fault.status, body, headers);
}

function malformedResponse(fault, route) {
	if (route === 'image') return bufferResponse(200, 'image/png', Buffer.from(fault.body ?? 'this is not an image'));
	return bufferResponse(200, JSON_TYPE, Buffer.from(fault.body ?? '{"code":0,"message":"SUCCEED","data":{"task_'));
}

function redirectResponse(fault) {
	const location = fault.location;
	return bufferResponse(fault.status ?? 302, 'text/plain; charset=utf-8', Buffer.from(`Redirecting to ${location}`), {
		location,
		...(fault.headers ?? {}),
	});
}

/** The response a replacing fault sends instead of the normal one (undefined for the others). */
function faultResponse(fault, route) {
	switch (fault.type) {
		case 'status':
			return statusFaultResponse(fault);
		case 'code':
			return jsonResponse(200, { code: fault.code, message: fault.message ?? 'Simulated error', request_id: newRequestId() });
		case 'malformed':
			return malformedResponse(fault, route);
		case 'cometError':
			return jsonResponse(fault.status, cometErrorBody({ ...fault, message: fault.message ?? 'Simulated CometAPI error' }), fault.headers);
		case 'redirect':
			return redirectResponse(fault);
		default:
			return undefined;
	}
}

module.exports = { createFaultQueues, faultResponse, cometErrorBody, NORMAL_RESPONSE_FAULTS };
