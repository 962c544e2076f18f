'use strict';
// HTTP plumbing shared by the simulator's servers: response builders, body reading, and
// sending with backpressure, cuts and trickling. Node stdlib only; never logs.

const http = require('node:http');
const crypto = require('node:crypto');
const images = require('./images');

const JSON_TYPE = 'application/json; charset=utf-8';

const newRequestId = () => crypto.randomUUID();

/** A response: status, headers and a body plan (see images.planChunks). */
function bufferResponse(status, contentType, buf, headers = {}) {
	return { status, headers: { 'content-type': contentType, ...headers }, plan: { length: buf.length, parts: [{ buf }] } };
}

function jsonResponse(status, obj, headers) {
	return bufferResponse(status, JSON_TYPE, Buffer.from(JSON.stringify(obj)), headers);
}

/** Parsed JSON, else the text, else undefined for an empty body. */
function parseBody(buf) {
	if (buf.length === 0) return undefined;
	const text = buf.toString('utf8');
	try {
		return JSON.parse(text);
	} catch {
		return text;
	}
}

/** Reads the whole request body, or returns undefined if it exceeds `max` bytes. */
function readBody(req, max) {
	return new Promise((resolve) => {
		const chunks = [];
		let size = 0;
		req.on('data', (chunk) => {
			size += chunk.length;
			if (size <= max) chunks.push(chunk);
		});
		req.on('end', () => resolve(size <= max ? Buffer.concat(chunks) : undefined));
		req.on('error', () => resolve(Buffer.alloc(0)));
	});
}

function waitDrainOrClose(res) {
	return new Promise((resolve) => {
		const done = () => {
			res.off('drain', done);
			res.off('close', done);
			resolve();
		};
		res.on('drain', done);
		res.on('close', done);
	});
}

/**
 * Streams a response with backpressure. `cut` = {bytes, then: 'destroy'|'end'} sends only
 * the first bytes (Content-Length still announces the full length) and then closes the socket.
 */
async function send(req, res, record, response, cut) {
	if (res.destroyed) return;
	const headers = { 'content-length': String(response.plan.length), ...response.headers };
	if (cut) headers.connection = 'close';
	res.writeHead(response.status, headers);
	record.status = response.status;
	if (req.method === 'HEAD') return void res.end();
	const limit = cut ? Math.min(cut.bytes, response.plan.length) : response.plan.length;
	const closed = new Promise((resolve) => res.once('close', resolve));
	let flushed = Promise.resolve();
	for (const chunk of images.planChunks(response.plan, limit)) {
		if (res.destroyed) return;
		flushed = new Promise((resolve) => res.write(chunk, () => resolve()));
		if (res.writableNeedDrain) await waitDrainOrClose(res);
	}
	if (!cut) return void res.end();
	// Make sure the partial body reached the socket before cutting it.
	await Promise.race([flushed, closed]);
	if (req.socket.destroyed) return;
	record.cut = cut.then;
	if (cut.then === 'end') req.socket.end();
	else req.socket.destroy();
}

/**
 * Sends `response` slowly: headers at once, then one byte every `intervalMs`, `bytes` times
 * (default: without end), then the rest at once. `padWithSpaces` (JSON) trickles spaces before
 * the real body, which stays valid JSON; otherwise the body's own bytes are trickled.
 * `sleep(ms)` must resolve early when the simulator closes; `stopped()` says it did.
 */
async function sendTrickle(req, res, record, response, { intervalMs, bytes, padWithSpaces }, sleep, stopped) {
	if (res.destroyed) return;
	const body = images.planToBuffer(response.plan);
	const limit = bytes ?? Infinity;
	const trickled = padWithSpaces ? limit : Math.min(limit, body.length);
	const headers = { ...response.headers };
	const total = padWithSpaces ? limit + body.length : body.length;
	if (Number.isFinite(total)) headers['content-length'] = String(total);
	res.writeHead(response.status, headers);
	record.status = response.status;
	record.trickledBytes = 0;
	if (req.method === 'HEAD') return void res.end();
	for (let i = 0; i < trickled; i++) {
		await sleep(intervalMs);
		if (stopped() || res.destroyed) return;
		res.write(padWithSpaces ? ' ' : body.subarray(i, i + 1));
		record.trickledBytes++;
	}
	res.end(padWithSpaces ? body : body.subarray(trickled));
}

/** A server whose handler errors never leave the client hanging; its sockets go into `sockets`. */
function makeServer(handler, sockets) {
	const server = http.createServer((req, res) => {
		handler(req, res).catch(() => {
			// Never log; just make sure the client is not left hanging.
			if (!res.headersSent) res.writeHead(500, { 'content-type': JSON_TYPE }).end('{"code":500,"message":"Simulator error"}');
			else res.destroy();
		});
	});
	server.on('connection', (socket) => {
		sockets.add(socket);
		socket.on('close', () => sockets.delete(socket));
	});
	server.on('clientError', (_err, socket) => socket.destroy());
	// Longer than clients' idle-socket timeouts, so a reused keep-alive socket is not closed
	// by the server at the same moment (a classic source of flaky ECONNRESET).
	server.keepAliveTimeout = 65_000;
	return server;
}

function listen(server, port, host) {
	return new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, host, () => {
			server.off('error', reject);
			resolve(server.address());
		});
	});
}

/** Closes servers and destroys their open sockets. */
function closeServers(servers, sockets) {
	const done = Promise.all(servers.map((s) => new Promise((resolve) => s.close(() => resolve()))));
	for (const socket of sockets) socket.destroy();
	return done;
}

function safeDecode(text) {
	try {
		return decodeURIComponent(text);
	} catch {
		return text;
	}
}

const hostForUrl = (host) => (host.includes(':') ? `[${host}]` : host);

module.exports = {
	JSON_TYPE,
	newRequestId,
	bufferResponse,
	jsonResponse,
	parseBody,
	readBody,
	send,
	sendTrickle,
	makeServer,
	listen,
	closeServers,
	safeDecode,
	hostForUrl,
};
