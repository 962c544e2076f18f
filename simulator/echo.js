'use strict';
// A second loopback "other host" for redirect and callback tests: records every request
// (method, path, headers, body, whether the body arrived whole) and answers as scripted.

const { readBody, parseBody, makeServer, listen, closeServers, hostForUrl } = require('./http');

const DEFAULT_ANSWER = { status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };

/** Resolves once the request body ended, or was cut (aborted: true). */
function readRecordedBody(req) {
	return new Promise((resolve) => {
		let aborted = false;
		req.once('aborted', () => (aborted = true));
		req.once('error', () => (aborted = true));
		readBody(req, 16 * 1024 * 1024).then((buf) => resolve({ buf: buf ?? Buffer.alloc(0), aborted: aborted || !req.complete }));
	});
}

function answerFor(respond, record) {
	const answer = typeof respond === 'function' ? respond(record) : respond;
	return { ...DEFAULT_ANSWER, ...(answer ?? {}) };
}

/**
 * @param options.host default '127.0.0.3' (neither the API's nor the image server's address)
 * @param options.port default random
 * @param options.respond {status, headers, body} or (record) => that | undefined (default 200 {"ok":true})
 */
async function startEchoServer(options = {}) {
	const host = options.host ?? '127.0.0.3';
	const requests = [];
	const waiters = new Set();
	const sockets = new Set();
	let respond = options.respond ?? DEFAULT_ANSWER;

	function notify() {
		for (const waiter of waiters) {
			if (requests.length < waiter.count) continue;
			waiters.delete(waiter);
			clearTimeout(waiter.timer);
			waiter.resolve(requests.slice());
		}
	}

	async function handle(req, res) {
		const record = { method: req.method, path: req.url, headers: { ...req.headers }, body: undefined, aborted: false, at: Date.now() };
		const { buf, aborted } = await readRecordedBody(req);
		Object.assign(record, { body: parseBody(buf), rawBody: buf.toString('utf8'), aborted });
		requests.push(record);
		notify();
		if (res.destroyed || aborted) return;
		const answer = answerFor(respond, record);
		const body = Buffer.from(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
		res.writeHead(answer.status, { ...answer.headers, 'content-length': String(body.length) });
		res.end(body);
	}

	const server = makeServer(handle, sockets);
	const address = await listen(server, options.port ?? 0, host);
	const url = `http://${hostForUrl(host)}:${address.port}`;

	return {
		url,
		host,
		port: address.port,
		requests,
		/** Changes how later requests are answered. */
		respondWith(next) {
			respond = next ?? DEFAULT_ANSWER;
		},
		/** Resolves with the requests once at least `count` arrived; rejects after timeoutMs (default 5000). */
		waitFor(count, timeoutMs = 5000) {
			return new Promise((resolve, reject) => {
				const waiter = { count, resolve };
				waiter.timer = setTimeout(() => {
					waiters.delete(waiter);
					reject(new Error(`echo server: ${requests.length} of ${count} requests after ${timeoutMs} ms`));
				}, timeoutMs);
				waiters.add(waiter);
				notify();
			});
		},
		clear() {
			requests.length = 0;
		},
		close() {
			for (const waiter of waiters) clearTimeout(waiter.timer);
			waiters.clear();
			return closeServers([server], sockets);
		},
	};
}

module.exports = { startEchoServer };
