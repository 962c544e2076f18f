'use strict';
// Status-change callbacks, as CometAPI and Kling document them: for a task created with
// callback_url the simulator POSTs the task object (as the query returns it under `data`) on
// every status change by the simulator clock, then repeats the final one (the provider "may
// repeat the same status"). Failed deliveries (connection error, timeout, non-2xx) are retried
// after a short delay (retries are not documented by Kling; callbackRetries: 0 turns them off).
// A light timer watches the clock while any task may still change, so callbacks fire without
// anyone polling; flush() evaluates at once.
// Callbacks never carry the API key. Also: forged and malformed callbacks for security tests.

const http = require('node:http');
const https = require('node:https');
const crypto = require('node:crypto');
const { isTerminal, statusesSince } = require('./tasks');

const USER_AGENT = 'kling-simulator-callback/1';
const FORGED_IMAGE_URL = 'http://127.0.0.3:9/forged/0.png';

const CALLBACK_DEFAULTS = {
	callbackWrapped: false,
	callbackRepeats: 1,
	callbackRetries: 2,
	callbackRetryDelayMs: 100,
	callbackRepeatDelayMs: 50,
	callbackPollMs: 20,
	callbackTimeoutMs: 5000,
	callbackAllowRemote: false,
};

function isHttpUrl(url) {
	try {
		return ['http:', 'https:'].includes(new URL(url).protocol);
	} catch {
		return false;
	}
}

/** Tests must never reach off the machine: only loopback hosts, unless callbackAllowRemote. */
function isLoopbackUrl(url) {
	const host = new URL(url).hostname;
	return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function checkHttpUrl(url) {
	if (!isHttpUrl(url)) throw new TypeError(`Callbacks go only to http(s) URLs, got ${url}`);
}

/** Malformed callback bodies by kind: [content type, body text]. */
const MALFORMED = {
	notJson: () => ['application/json', 'this is not JSON {"task_id":'],
	noTaskId: () => ['application/json', JSON.stringify({ task_status: 'succeed', task_result: { images: [{ index: 0, url: FORGED_IMAGE_URL }] } })],
	empty: () => ['application/json', ''],
	array: () => ['application/json', '[]'],
};

/**
 * One POST. `dropAfterBytes` sends only that much of the body, then destroys the connection
 * (the receiver sees an aborted request). Resolves {responseStatus} or {error}; never rejects.
 */
function post(url, { contentType, text, timeoutMs, dropAfterBytes }, inFlight) {
	return new Promise((resolve) => {
		const body = Buffer.from(text);
		const headers = { 'content-type': contentType, 'content-length': String(body.length), 'user-agent': USER_AGENT };
		const client = url.startsWith('https:') ? https : http;
		const req = client.request(url, { method: 'POST', headers, agent: false, timeout: timeoutMs });
		inFlight.add(req);
		let settled = false;
		const done = (result) => {
			inFlight.delete(req);
			if (!settled) resolve(result);
			settled = true;
		};
		req.on('response', (res) => {
			res.resume();
			res.on('end', () => done({ responseStatus: res.statusCode }));
			res.on('error', (err) => done({ responseStatus: res.statusCode, error: err.message }));
		});
		req.on('timeout', () => req.destroy(new Error(`callback timed out after ${timeoutMs} ms`)));
		req.on('error', (err) => done({ error: err.message }));
		req.on('close', () => done({ error: 'connection closed' }));
		if (dropAfterBytes === undefined) return void req.end(body);
		req.write(body.subarray(0, dropAfterBytes), () => req.destroy(new Error('simulated connection drop')));
	});
}

const succeeded = (result) => result.error === undefined && result.responseStatus >= 200 && result.responseStatus < 300;

/**
 * @param clock () => ms
 * @param options resolved simulator options (CALLBACK_DEFAULTS keys)
 * @param wire createWire(options): task objects and envelopes as sent
 * @param sleep (ms) => Promise, resolved early on close
 * @param takeFault () => next queued 'callback' fault or undefined
 * @param findTask (id) => task record or undefined
 */
function createCallbacks({ clock, options, wire, sleep, takeFault, findTask }) {
	const tracked = new Map(); // task id -> {task, url, lastStatus, chain}
	const log = [];
	const pending = new Set(); // delivery chains not finished
	const requests = new Set(); // outgoing client requests, destroyed on close
	let generation = 0; // bumped by reset/close: stale chains stop
	let timer;
	let closed = false;

	const stale = (gen) => closed || gen !== generation;

	function wrap(data) {
		return options.callbackWrapped ? wire.success(data) : data;
	}

	/** One delivery attempt, recorded before it starts; `pickFault` is asked only when it will be sent. */
	async function attempt(url, payload, meta, pickFault) {
		const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
		const { contentType = 'application/json', lost, ...fields } = meta;
		const record = { ...fields, url, body: payload, at: clock(), responseStatus: undefined, error: undefined, ok: false };
		record.headers = { 'content-type': contentType, 'user-agent': USER_AGENT };
		log.push(record);
		if (meta.lost) {
			// The provider's delivery never arrives (taskPlan callbacksLost): recorded, not sent.
			record.error = 'not delivered: lost on the way (taskPlan callbacksLost)';
			record.notDelivered = true;
			return record;
		}
		if (!options.callbackAllowRemote && !isLoopbackUrl(url)) {
			record.error = 'not delivered: not a loopback host (set callbackAllowRemote to allow)';
			record.notDelivered = true;
			return record;
		}
		const fault = pickFault();
		if (fault) record.fault = fault.type;
		if (fault?.type === 'delay') await sleep(fault.ms);
		const dropAfterBytes = fault?.type === 'drop' ? fault.bytes ?? Math.floor(text.length / 2) : undefined;
		const result = await post(url, { contentType, text, timeoutMs: options.callbackTimeoutMs, dropAfterBytes }, requests);
		Object.assign(record, result, { ok: succeeded(result) });
		return record;
	}

	/** A task callback: first attempt plus up to callbackRetries retries after failures. */
	async function deliver(url, payload, meta, gen) {
		for (let n = 1; n <= 1 + options.callbackRetries; n++) {
			if (stale(gen)) return;
			const record = await attempt(url, payload, { ...meta, attempt: n }, takeFault);
			if (record.ok || record.notDelivered) return;
			if (n <= options.callbackRetries) await sleep(options.callbackRetryDelayMs);
		}
	}

	/** Queues work on the task's chain so its callbacks go out one after another, in order. */
	function enqueue(entry, work) {
		const run = entry.chain.then(work).catch(() => {});
		entry.chain = run;
		pending.add(run);
		run.then(() => pending.delete(run));
	}

	function enqueueStatus(entry, state) {
		const gen = generation;
		const payload = wrap(wire.taskData(entry.task, clock(), state));
		const meta = { kind: 'status', taskId: entry.task.id, taskStatus: state.status, lost: entry.task.callbacksLost };
		enqueue(entry, () => deliver(entry.url, payload, meta, gen));
		if (!isTerminal(state.status)) return;
		for (let i = 0; i < options.callbackRepeats; i++) {
			enqueue(entry, async () => {
				await sleep(options.callbackRepeatDelayMs);
				await deliver(entry.url, payload, { ...meta, kind: 'repeat' }, gen);
			});
		}
	}

	/** Sends every status change the clock says happened since the last one sent. */
	function pump() {
		const now = clock();
		for (const entry of tracked.values()) {
			const states = statusesSince(entry.task, entry.lastStatus, now);
			for (const state of states) enqueueStatus(entry, state);
			if (states.length) entry.lastStatus = states[states.length - 1].status;
		}
		if (![...tracked.values()].some((e) => !isTerminal(e.lastStatus))) stopTimer();
	}

	function startTimer() {
		if (timer || closed) return;
		timer = setInterval(pump, options.callbackPollMs);
		timer.unref();
	}

	function stopTimer() {
		if (timer) clearInterval(timer);
		timer = undefined;
	}

	/** One-off POST (forged / malformed), no retries, no faults. */
	function sendOnce(url, payload, meta) {
		checkHttpUrl(url);
		return attempt(url, payload, { ...meta, attempt: 1 }, () => undefined);
	}

	function forgedBody({ taskId, imageUrl = FORGED_IMAGE_URL }) {
		const task = taskId === undefined ? undefined : findTask(taskId);
		const now = clock();
		const forgedId = taskId ?? `sim-forged-${crypto.randomBytes(4).toString('hex')}`;
		return {
			task_id: forgedId,
			task_info: { external_task_id: task?.externalTaskId ?? null },
			task_status: wire.spell('succeed', { taskId: forgedId }),
			task_status_msg: '',
			created_at: task?.createdAt ?? now,
			updated_at: now,
			task_result: { result_type: 'single', images: [{ index: 0, url: imageUrl }] },
			final_unit_deduction: '1',
		};
	}

	return {
		/** Starts watching a just-created task that has a callback_url. */
		track(task) {
			if (!isHttpUrl(task.body.callback_url)) return;
			tracked.set(task.id, { task, url: task.body.callback_url, lastStatus: undefined, chain: Promise.resolve() });
			startTimer();
			setImmediate(() => !closed && pump());
		},
		/** The task's status may have changed outside its timeline (failTask). */
		wake(taskId) {
			if (tracked.has(taskId)) startTimer();
		},
		/** Sends what the clock says is due now and waits until every delivery (retries, repeats) is done. */
		async flush() {
			pump();
			while (pending.size) await Promise.allSettled([...pending]);
		},
		records: () => log.slice(),
		sendForged(url, forgeOptions = {}) {
			const body = forgeOptions.body ?? forgedBody(forgeOptions);
			const wrapped = forgeOptions.wrapped ?? options.callbackWrapped;
			const payload = forgeOptions.body === undefined && wrapped ? wire.success(body) : body;
			return sendOnce(url, payload, { kind: 'forged', taskId: body.task_id ?? body.data?.task_id, taskStatus: 'succeed' });
		},
		sendMalformed(url, kind) {
			const make = MALFORMED[kind];
			if (!make) throw new TypeError(`Unknown malformed callback kind: ${kind} (${Object.keys(MALFORMED).join(', ')})`);
			const [contentType, text] = make();
			return sendOnce(url, text, { kind: 'malformed', malformed: kind, taskId: undefined, taskStatus: undefined, contentType });
		},
		reset() {
			generation++;
			tracked.clear();
			log.length = 0;
			stopTimer();
		},
		close() {
			closed = true;
			generation++;
			stopTimer();
			for (const req of requests) req.destroy();
		},
	};
}

module.exports = { createCallbacks, CALLBACK_DEFAULTS, MALFORMED_CALLBACK_KINDS: Object.keys(MALFORMED) };
