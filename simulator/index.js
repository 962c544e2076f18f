'use strict';
// CometAPI Kling Omni Image simulator: a real HTTP API server plus a separate image server,
// both on loopback, with scriptable faults. Node stdlib only; the library never logs.

const http = require('node:http');
const crypto = require('node:crypto');
const images = require('./images');
const { validateCreateBody } = require('./validate');

const CREATE_PATH = '/kling/v1/images/omni-image';
const QUERY_RE = /^\/kling\/v1\/images\/omni-image\/([^/]+)$/;
const IMAGE_RE = /^\/images\/([^/]+)\/(\d+)(-wm)?\.([a-z]+)$/;
const JSON_TYPE = 'application/json; charset=utf-8';

const CODE_AUTH = 401;
const CODE_BAD_REQUEST = 1200;
const CODE_INVALID_PARAM = 1201;
const CODE_TASK_NOT_EXIST = 1203;

const RESULT_LONG_SIDE = 256; // generated results are small: fast to build, any size via padding
const DEFAULT_FAIL_REASON = 'Image generation failed (simulated)';

// Which routes each fault type can hit, and which types still deliver the normal response
// (so a create behind them really creates the task).
const FAULT_ROUTES = {
	status: ['create', 'query', 'image'],
	code: ['create', 'query', 'image'],
	drop: ['create', 'query', 'image'],
	dropMidBody: ['create', 'query', 'image'],
	delay: ['create', 'query', 'image'],
	malformed: ['create', 'query', 'image'],
	contentType: ['create', 'query', 'image'],
	truncate: ['create', 'query', 'image'],
	oversize: ['image'],
};
const NORMAL_RESPONSE_FAULTS = new Set(['delay', 'dropMidBody', 'truncate', 'contentType']);
const FAULT_REQUIRED = { status: 'status', code: 'code', delay: 'ms', contentType: 'contentType', oversize: 'bytes' };

const DEFAULTS = {
	apiKey: 'sim-key',
	apiHost: '127.0.0.1',
	imageHost: '127.0.0.2',
	apiPort: 0,
	imagePort: 0,
	taskDurationMs: 1000,
	errorStyle: 'http',
	imageFormat: 'png',
	imageSizeBytes: undefined,
	taskPlan: undefined,
	clock: undefined,
	taskNotExistStatus: 404,
	maxBodyBytes: 150 * 1024 * 1024, // ten 10 MB images as Base64 fit comfortably
};

// ---------------------------------------------------------------------------
// Small helpers

const newRequestId = () => crypto.randomUUID();
const extFor = (format) => (format === 'png' ? 'png' : 'jpg');
const hostForUrl = (host) => (host.includes(':') ? `[${host}]` : host);

function normaliseFormat(format) {
	if (format === 'png') return 'png';
	if (format === 'jpeg' || format === 'jpg') return 'jpeg';
	throw new RangeError(`imageFormat must be 'png' or 'jpeg', got ${format}`);
}

function bufferResponse(status, contentType, buf, headers = {}) {
	return { status, headers: { 'content-type': contentType, ...headers }, plan: { length: buf.length, parts: [{ buf }] } };
}

function jsonResponse(status, obj, headers) {
	return bufferResponse(status, JSON_TYPE, Buffer.from(JSON.stringify(obj)), headers);
}

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

/** Width/height of generated results: the requested aspect ratio, long side RESULT_LONG_SIDE. */
function resultDimensions(aspectRatio) {
	const [w, h] = /^\d+:\d+$/.test(aspectRatio ?? '') ? aspectRatio.split(':').map(Number) : [1, 1];
	const scale = RESULT_LONG_SIDE / Math.max(w, h);
	return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
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

// ---------------------------------------------------------------------------
// Task state

/** Status of a task at time `now`, derived from its timeline (or a forced failure). */
function taskState(task, now) {
	if (task.failedAt !== undefined) {
		return { status: 'failed', updatedAt: task.failedAt, message: task.failReason };
	}
	const elapsed = now - task.createdAt;
	if (elapsed >= task.durationMs) {
		const failed = task.outcome === 'failed';
		return {
			status: failed ? 'failed' : 'succeed',
			updatedAt: task.createdAt + task.durationMs,
			message: failed ? task.failReason : '',
		};
	}
	if (elapsed >= task.durationMs / 2) {
		return { status: 'processing', updatedAt: task.createdAt + Math.floor(task.durationMs / 2), message: '' };
	}
	return { status: 'submitted', updatedAt: task.createdAt, message: '' };
}

function taskData(task, now) {
	const state = taskState(task, now);
	const data = {
		task_id: task.id,
		task_info: { external_task_id: task.externalTaskId ?? null },
		task_status: state.status,
		task_status_msg: state.message,
		created_at: task.createdAt,
		updated_at: state.updatedAt,
	};
	if (state.status === 'succeed') {
		data.task_result = { result_type: task.resultType, images: task.images.map((img) => ({ ...img })) };
		data.final_unit_deduction = String(task.imageCount);
	}
	return data;
}

// ---------------------------------------------------------------------------
// The simulator

async function startSimulator(userOptions = {}) {
	const options = { ...DEFAULTS, ...dropUndefined(userOptions) };
	options.imageFormat = normaliseFormat(options.imageFormat);
	if (!['http', 'code200'].includes(options.errorStyle)) {
		throw new RangeError(`errorStyle must be 'http' or 'code200', got ${options.errorStyle}`);
	}
	const clock = options.clock ?? Date.now;

	const requests = [];
	const tasks = new Map();
	const externalIds = new Set();
	const faults = { create: [], query: [], image: [] };
	const sleepers = new Set();
	let taskCounter = 0; // never reset: keeps task ids unique across reset()
	let taskNumber = 0; // 1-based per reset, passed to taskPlan
	let closed = false;
	let imageUrl = '';

	// --- infrastructure ---------------------------------------------------------

	function sleep(ms) {
		return new Promise((resolve) => {
			const sleeper = { resolve, timer: setTimeout(() => sleepers.delete(sleeper) && resolve(), ms) };
			sleepers.add(sleeper);
		});
	}

	function errorResponse(httpStatus, code, message) {
		const status = options.errorStyle === 'code200' ? 200 : httpStatus;
		return jsonResponse(status, { code, message, request_id: newRequestId() });
	}

	function takeFault(route) {
		const queue = faults[route];
		const fault = queue[0];
		if (!fault) return undefined;
		if (--fault.remaining <= 0) queue.shift();
		return fault;
	}

	function recordRequest(server, req) {
		const record = {
			server,
			method: req.method,
			path: req.url,
			headers: { ...req.headers },
			body: undefined,
			at: clock(),
		};
		requests.push(record);
		return record;
	}

	// --- API server ---------------------------------------------------------------

	function checkAuth(req) {
		const header = req.headers.authorization;
		if (!header) return errorResponse(401, CODE_AUTH, 'Missing API key: send Authorization: Bearer <API key>');
		const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
		if (!match || match[1] !== options.apiKey) return errorResponse(401, CODE_AUTH, 'Invalid API key');
		return undefined;
	}

	function createTask(body) {
		taskNumber++;
		const plan = (options.taskPlan && options.taskPlan(body, taskNumber)) || {};
		const id = `sim-${++taskCounter}-${crypto.randomBytes(4).toString('hex')}`;
		const resultType = body.result_type ?? 'single';
		const imageCount = plan.imageCount ?? (resultType === 'series' ? body.series_amount ?? 4 : body.n ?? 1);
		const format = normaliseFormat(plan.format ?? options.imageFormat);
		const watermark = body.watermark_info?.enabled === true;
		const now = clock();
		const task = {
			id,
			number: taskNumber,
			body,
			externalTaskId: body.external_task_id,
			createdAt: now,
			durationMs: plan.durationMs ?? options.taskDurationMs,
			outcome: plan.outcome ?? 'succeed',
			failReason: plan.failReason ?? DEFAULT_FAIL_REASON,
			failedAt: undefined,
			expiredStatus: undefined,
			format,
			resultType,
			imageCount,
			watermark,
			imageSizeBytes: plan.imageSizeBytes ?? options.imageSizeBytes,
			dimensions: resultDimensions(body.aspect_ratio),
			images: [],
			bases: new Map(), // `${index}/${kind}` -> encoded base picture (small)
		};
		for (let index = 0; index < imageCount; index++) {
			const base = `${imageUrl}/images/${encodeURIComponent(id)}/${index}`;
			const img = { index, url: `${base}.${extFor(format)}` };
			if (watermark) img.watermark_url = `${base}-wm.${extFor(format)}`;
			task.images.push(img);
		}
		tasks.set(id, task);
		if (task.externalTaskId !== undefined) externalIds.add(task.externalTaskId);
		return task;
	}

	function handleCreate(req, rawBody, record) {
		const authError = checkAuth(req);
		if (authError) return authError;
		if (rawBody === undefined) return errorResponse(413, CODE_BAD_REQUEST, 'Request body too large');
		let body;
		try {
			body = JSON.parse(rawBody.toString('utf8'));
		} catch {
			return errorResponse(400, CODE_BAD_REQUEST, 'Request body must be valid JSON');
		}
		const problem = validateCreateBody(body, externalIds);
		if (problem) return errorResponse(400, CODE_INVALID_PARAM, `Invalid parameter: ${problem}`);
		const task = createTask(body);
		record.afterCreate = true;
		record.taskId = task.id;
		return jsonResponse(200, {
			code: 0,
			message: 'SUCCEED',
			request_id: newRequestId(),
			data: {
				task_id: task.id,
				task_info: { external_task_id: task.externalTaskId ?? null },
				task_status: 'submitted',
				created_at: task.createdAt,
				updated_at: task.createdAt,
			},
		});
	}

	function handleQuery(req, taskId) {
		const authError = checkAuth(req);
		if (authError) return authError;
		const task = tasks.get(taskId);
		if (!task) return errorResponse(options.taskNotExistStatus, CODE_TASK_NOT_EXIST, 'task_not_exist');
		return jsonResponse(200, { code: 0, message: 'SUCCEED', request_id: newRequestId(), data: taskData(task, clock()) });
	}

	function apiRoute(req) {
		const pathname = req.url.split('?')[0];
		if (req.method === 'POST' && pathname === CREATE_PATH) return { name: 'create' };
		const match = req.method === 'GET' && QUERY_RE.exec(pathname);
		if (match) return { name: 'query', taskId: safeDecode(match[1]) };
		return { name: 'other' };
	}

	async function handleApi(req, res) {
		const record = recordRequest('api', req);
		const rawBody = await readBody(req, options.maxBodyBytes);
		record.body = rawBody === undefined ? '<body too large>' : parseBody(rawBody);
		const route = apiRoute(req);
		record.route = route.name;
		if (route.name === 'create') record.afterCreate = false;
		if (route.name === 'query') record.taskId = route.taskId;
		if (route.name === 'other') {
			return send(req, res, record, jsonResponse(404, { code: 404, message: `Not found: ${req.method} ${req.url}` }));
		}
		const process = () =>
			route.name === 'create' ? handleCreate(req, rawBody, record) : handleQuery(req, route.taskId);
		return serveWithFault(req, res, record, takeFault(route.name), process, route.name === 'create');
	}

	// --- image server ---------------------------------------------------------------

	function resolveImage(pathname) {
		const match = IMAGE_RE.exec(pathname);
		if (!match) return undefined;
		const [, rawId, indexText, wm, ext] = match;
		const task = tasks.get(safeDecode(rawId));
		const index = Number(indexText);
		const kind = wm ? 'wm' : 'main';
		if (!task || index >= task.imageCount || ext !== extFor(task.format)) return undefined;
		if (kind === 'wm' && !task.watermark) return undefined;
		return { task, index, kind };
	}

	function imageBase({ task, index, kind }) {
		const key = `${index}/${kind}`;
		if (!task.bases.has(key)) {
			const style = { ...images.styleFromSeed(`${task.id}/${index}/${kind}`), band: kind === 'wm' };
			task.bases.set(key, images.encodeBase(task.format, task.dimensions.width, task.dimensions.height, style));
		}
		return task.bases.get(key);
	}

	function imagePlan(image, padTo = image.task.imageSizeBytes) {
		return images.planFromBase(imageBase(image), padTo);
	}

	function notFound(req) {
		return jsonResponse(404, { code: 404, message: `Not found: ${req.method} ${req.url}` });
	}

	function expiredResponse(status) {
		const xml =
			'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>' +
			'<Message>Request has expired</Message></Error>';
		return bufferResponse(status, 'application/xml', Buffer.from(xml));
	}

	function handleImage(req, image) {
		if (!image) return notFound(req);
		const { task } = image;
		if (task.expiredStatus) return expiredResponse(task.expiredStatus);
		// Results only exist once the task has succeeded.
		if (taskState(task, clock()).status !== 'succeed') return notFound(req);
		const plan = imagePlan(image);
		return { status: 200, headers: { 'content-type': plan.contentType }, plan };
	}

	async function handleImageRequest(req, res) {
		const record = recordRequest('image', req);
		record.body = parseBody((await readBody(req, 1024 * 1024)) ?? Buffer.alloc(0));
		const pathname = req.url.split('?')[0];
		const isImageRoute = (req.method === 'GET' || req.method === 'HEAD') && IMAGE_RE.test(pathname);
		record.route = isImageRoute ? 'image' : 'other';
		if (!isImageRoute) return send(req, res, record, notFound(req));
		const image = resolveImage(pathname);
		if (image) Object.assign(record, { taskId: image.task.id, index: image.index, kind: image.kind });
		// The API key must never reach the image host: reject before anything else, faults included.
		if (req.headers.authorization !== undefined) {
			record.rejectedAuthorization = true;
			const message = 'Authorization header not allowed on the image host';
			return send(req, res, record, jsonResponse(403, { code: 403, message }));
		}
		const fault = takeFault('image');
		if (fault?.type === 'oversize') {
			const base = image ? imageBase(image) : images.encodeBase('png', 64, 64, images.styleFromSeed('oversize'));
			const plan = images.planFromBase(base, fault.bytes);
			record.fault = fault.type;
			return send(req, res, record, { status: 200, headers: { 'content-type': plan.contentType }, plan });
		}
		return serveWithFault(req, res, record, fault, () => handleImage(req, image), false);
	}

	// --- faults -------------------------------------------------------------------

	/** The response a replacing fault sends instead of the normal one. */
	function faultResponse(fault, route) {
		switch (fault.type) {
			case 'status': {
				const headers = { ...(fault.headers ?? {}) };
				if (typeof fault.body === 'string') {
					return bufferResponse(fault.status, 'text/plain', Buffer.from(fault.body), headers);
				}
				const message = http.STATUS_CODES[fault.status] ?? 'Error';
				const body = fault.body ?? { code: fault.status, message, request_id: newRequestId() };
				return jsonResponse(fault.status, body, headers);
			}
			case 'code':
				return jsonResponse(200, {
					code: fault.code,
					message: fault.message ?? 'Simulated error',
					request_id: newRequestId(),
				});
			case 'malformed':
				if (route === 'image') {
					return bufferResponse(200, 'image/png', Buffer.from(fault.body ?? 'this is not an image'));
				}
				return bufferResponse(200, JSON_TYPE, Buffer.from(fault.body ?? '{"code":0,"message":"SUCCEED","data":{"task_'));
			default:
				return undefined;
		}
	}

	/**
	 * Applies `fault` (if any) around the normal handler `process`. For create, `process`
	 * has side effects, so it runs exactly when the task should exist afterwards.
	 */
	async function serveWithFault(req, res, record, fault, process, sideEffects) {
		if (!fault) return send(req, res, record, process());
		record.fault = fault.type;
		const deliversNormal = NORMAL_RESPONSE_FAULTS.has(fault.type);
		let response;
		if (sideEffects && (fault.afterCreate ?? deliversNormal)) response = process();
		if (fault.type === 'delay') await sleep(fault.ms);
		if (closed) return;
		if (deliversNormal) response ??= process();
		switch (fault.type) {
			case 'drop':
				record.cut = 'destroy';
				return void req.socket.destroy();
			case 'delay':
				return send(req, res, record, response);
			case 'contentType':
				return send(req, res, record, {
					...response,
					headers: { ...response.headers, 'content-type': fault.contentType },
				});
			case 'dropMidBody':
			case 'truncate': {
				const bytes = fault.bytes ?? Math.floor(response.plan.length / 2);
				return send(req, res, record, response, { bytes, then: fault.type === 'truncate' ? 'end' : 'destroy' });
			}
			default:
				return send(req, res, record, faultResponse(fault, record.route));
		}
	}

	function addFault(fault) {
		const allowed = FAULT_ROUTES[fault?.type];
		if (!allowed) throw new TypeError(`Unknown fault type: ${fault?.type}`);
		if (!allowed.includes(fault.route)) {
			throw new TypeError(`Fault type '${fault.type}' cannot apply to route '${fault.route}'`);
		}
		const required = FAULT_REQUIRED[fault.type];
		if (required && fault[required] === undefined) {
			throw new TypeError(`Fault type '${fault.type}' needs '${required}'`);
		}
		const times = fault.times ?? 1;
		if (!Number.isInteger(times) || times < 1) throw new TypeError('Fault times must be a positive integer');
		const queued = { ...fault, times, remaining: times };
		faults[fault.route].push(queued);
		return queued;
	}

	// --- servers ------------------------------------------------------------------

	const sockets = new Set();

	function makeServer(handler) {
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

	const apiServer = makeServer(handleApi);
	const imageServer = makeServer(handleImageRequest);
	const apiAddress = await listen(apiServer, options.apiPort, options.apiHost);
	let imageAddress;
	try {
		imageAddress = await listen(imageServer, options.imagePort, options.imageHost);
	} catch (err) {
		await new Promise((resolve) => apiServer.close(resolve));
		throw err;
	}
	const apiUrl = `http://${hostForUrl(options.apiHost)}:${apiAddress.port}`;
	imageUrl = `http://${hostForUrl(options.imageHost)}:${imageAddress.port}`;

	function getTask(taskId) {
		const task = tasks.get(taskId);
		if (!task) throw new Error(`Unknown task: ${taskId}`);
		return task;
	}

	return {
		apiUrl,
		imageUrl,
		apiKey: options.apiKey,
		options,
		requests,
		tasks,
		apiRequests: (route) => requests.filter((r) => r.server === 'api' && (route === undefined || r.route === route)),
		imageRequests: () => requests.filter((r) => r.server === 'image'),
		taskStatus: (taskId) => taskState(getTask(taskId), clock()).status,
		expectedImageBytes(url) {
			const pathname = new URL(url, imageUrl).pathname;
			const image = resolveImage(pathname);
			if (!image) throw new Error(`Not a result image URL of a known task: ${url}`);
			return images.planToBuffer(imagePlan(image));
		},
		addFault,
		clearFaults() {
			for (const route of Object.keys(faults)) faults[route].length = 0;
		},
		failTask(taskId, reason = DEFAULT_FAIL_REASON) {
			const task = getTask(taskId);
			task.failedAt = clock();
			task.failReason = reason;
		},
		expireImages(expireOptions = {}) {
			const status = expireOptions.status ?? 404;
			const targets = expireOptions.taskId ? [getTask(expireOptions.taskId)] : tasks.values();
			for (const task of targets) task.expiredStatus = status;
		},
		reset() {
			requests.length = 0;
			tasks.clear();
			externalIds.clear();
			taskNumber = 0;
			for (const route of Object.keys(faults)) faults[route].length = 0;
		},
		async close() {
			if (closed) return;
			closed = true;
			for (const sleeper of sleepers) {
				clearTimeout(sleeper.timer);
				sleeper.resolve();
			}
			sleepers.clear();
			const done = Promise.all([apiServer, imageServer].map((s) => new Promise((resolve) => s.close(() => resolve()))));
			for (const socket of sockets) socket.destroy();
			await done;
		},
	};
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

function safeDecode(text) {
	try {
		return decodeURIComponent(text);
	} catch {
		return text;
	}
}

function dropUndefined(obj) {
	return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

module.exports = {
	startSimulator,
	createReferencePng: images.createReferencePng,
	createReferenceJpeg: images.createReferenceJpeg,
	readImageSize: images.readImageSize,
};
