'use strict';
// CometAPI Kling Omni Image simulator: a real HTTP API server plus a separate image server,
// both on loopback, with scriptable faults, an account parallel-task limit and status
// callbacks. Node stdlib only; the library never logs. Modules:
//   http.js      response builders, body reading, sending (cuts, trickling), servers
//   tasks.js     task timeline and the task object the query answers
//   faults.js    fault validation, queues and replacing responses
//   accounts.js  parallel-task slots
//   callbacks.js status-change callbacks, forged and malformed callbacks
//   wire.js      status spellings and success envelopes as sent
//   echo.js      startEchoServer: a second loopback host that records requests

const crypto = require('node:crypto');
const images = require('./images');
const { validateCreateBody } = require('./validate');
const web = require('./http');
const tasksLib = require('./tasks');
const { createFaultQueues, faultResponse, cometErrorBody, NORMAL_RESPONSE_FAULTS } = require('./faults');
const { createAccount, CODE_PARALLEL_LIMIT, PARALLEL_LIMIT_MESSAGE } = require('./accounts');
const { createCallbacks, CALLBACK_DEFAULTS } = require('./callbacks');
const { createWire, resolveStatusSpelling } = require('./wire');
const { startEchoServer } = require('./echo');

const { jsonResponse, bufferResponse, newRequestId } = web;
const { DEFAULT_FAIL_REASON, taskState } = tasksLib;

const CREATE_PATH = '/kling/v1/images/omni-image';
const QUERY_RE = /^\/kling\/v1\/images\/omni-image\/([^/]+)$/;
const IMAGE_RE = /^\/images\/([^/]+)\/(\d+)(-wm)?\.([a-z]+)$/;

const CODE_AUTH = 401;
const CODE_BAD_REQUEST = 1200;
const CODE_INVALID_PARAM = 1201;
const CODE_TASK_NOT_EXIST = 1203;

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
	parallelSlots: undefined,
	parallelLimitStyle: undefined,
	errorEnvelope: 'kling',
	statusSpelling: 'contract',
	queryLagMs: 0,
	successErrorNull: false,
	...CALLBACK_DEFAULTS,
};

// ---------------------------------------------------------------------------
// Small helpers

const extFor = (format) => (format === 'png' ? 'png' : 'jpg');

function normaliseFormat(format) {
	if (format === 'png') return 'png';
	if (format === 'jpeg' || format === 'jpg') return 'jpeg';
	throw new RangeError(`imageFormat must be 'png' or 'jpeg', got ${format}`);
}

function checkOneOf(name, value, allowed) {
	if (!allowed.includes(value)) throw new RangeError(`${name} must be ${allowed.map((v) => `'${v}'`).join(' or ')}, got ${value}`);
}

function resolveOptions(userOptions) {
	const options = { ...DEFAULTS, ...dropUndefined(userOptions) };
	options.imageFormat = normaliseFormat(options.imageFormat);
	checkOneOf('errorStyle', options.errorStyle, ['http', 'code200']);
	if (options.parallelLimitStyle !== undefined) checkOneOf('parallelLimitStyle', options.parallelLimitStyle, ['http', 'code200']);
	checkOneOf('errorEnvelope', options.errorEnvelope, ['kling', 'comet']);
	resolveStatusSpelling(options.statusSpelling);
	if (!(options.queryLagMs >= 0)) throw new RangeError(`queryLagMs must be a non-negative number, got ${options.queryLagMs}`);
	return options;
}

function notFound(req) {
	return jsonResponse(404, { code: 404, message: `Not found: ${req.method} ${req.url}` });
}

/**
 * A path the API does not serve, answered as a real web host answers it (an nginx-style 404 page,
 * text/html): a Base URL with an extra path such as `/v1` ends up here.
 */
function pageNotFound() {
	const html =
		'<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n' +
		'<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';
	return bufferResponse(404, 'text/html', Buffer.from(html));
}

function expiredResponse(status) {
	const xml =
		'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>' +
		'<Message>Request has expired</Message></Error>';
	return bufferResponse(status, 'application/xml', Buffer.from(xml));
}

// ---------------------------------------------------------------------------
// The simulator

async function startSimulator(userOptions = {}) {
	const options = resolveOptions(userOptions);
	const clock = options.clock ?? Date.now;

	const requests = [];
	const tasks = new Map();
	const externalIds = new Set();
	const faults = createFaultQueues();
	const sleepers = new Set();
	const account = createAccount({ clock, parallelSlots: options.parallelSlots });
	const wire = createWire(options);
	const callbacks = createCallbacks({
		clock,
		options,
		wire,
		sleep,
		takeFault: () => faults.take('callback'),
		findTask: (id) => tasks.get(id),
	});
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

	function errorResponse(httpStatus, code, message, style = options.errorStyle) {
		return jsonResponse(style === 'code200' ? 200 : httpStatus, { code, message, request_id: newRequestId() });
	}

	function recordRequest(server, req) {
		const record = { server, method: req.method, path: req.url, headers: { ...req.headers }, body: undefined, at: clock() };
		requests.push(record);
		return record;
	}

	// --- API server ---------------------------------------------------------------

	function authErrorResponse(message) {
		if (options.errorEnvelope === 'comet') {
			return jsonResponse(401, cometErrorBody({ message, code: 'invalid_api_key' }));
		}
		return errorResponse(401, CODE_AUTH, message);
	}

	function checkAuth(req) {
		const header = req.headers.authorization;
		if (!header) return authErrorResponse('Missing API key: send Authorization: Bearer <API key>');
		const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
		if (!match || match[1] !== options.apiKey) return authErrorResponse('Invalid API key');
		return undefined;
	}

	function resultImages(id, format, imageCount, watermark) {
		const list = [];
		for (let index = 0; index < imageCount; index++) {
			const base = `${imageUrl}/images/${encodeURIComponent(id)}/${index}`;
			const img = { index, url: `${base}.${extFor(format)}` };
			if (watermark) img.watermark_url = `${base}-wm.${extFor(format)}`;
			list.push(img);
		}
		return list;
	}

	function createTask(body) {
		taskNumber++;
		const plan = (options.taskPlan && options.taskPlan(body, taskNumber)) || {};
		const id = `sim-${++taskCounter}-${crypto.randomBytes(4).toString('hex')}`;
		const imageCount = plan.imageCount ?? tasksLib.requestedImages(body);
		const format = normaliseFormat(plan.format ?? options.imageFormat);
		const watermark = body.watermark_info?.enabled === true;
		const task = {
			id,
			number: taskNumber,
			body,
			externalTaskId: body.external_task_id,
			createdAt: clock(),
			durationMs: plan.durationMs ?? options.taskDurationMs,
			outcome: plan.outcome ?? 'succeed',
			failReason: plan.failReason ?? DEFAULT_FAIL_REASON,
			callbacksLost: plan.callbacksLost === true,
			queryLagMs: plan.queryLagMs,
			failedAt: undefined,
			expiredStatus: undefined,
			format,
			resultType: body.result_type ?? 'single',
			imageCount,
			slots: tasksLib.requestedImages(body),
			watermark,
			imageSizeBytes: plan.imageSizeBytes ?? options.imageSizeBytes,
			dimensions: tasksLib.resultDimensions(body.aspect_ratio),
			images: resultImages(id, format, imageCount, watermark),
			bases: new Map(), // `${index}/${kind}` -> encoded base picture (small)
		};
		tasks.set(id, task);
		if (task.externalTaskId !== undefined) externalIds.add(task.externalTaskId);
		return task;
	}

	function parallelLimitResponse() {
		const style = options.parallelLimitStyle ?? options.errorStyle;
		return errorResponse(429, CODE_PARALLEL_LIMIT, PARALLEL_LIMIT_MESSAGE, style);
	}

	function createdResponse(task) {
		const data = {
			task_id: task.id,
			task_info: { external_task_id: task.externalTaskId ?? null },
			task_status: wire.spell('submitted', { taskId: task.id }),
			created_at: task.createdAt,
			updated_at: task.createdAt,
		};
		return jsonResponse(200, wire.success(data, { request_id: newRequestId() }));
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
		record.slots = tasksLib.requestedImages(body);
		if (!account.admits(record.slots)) {
			record.rejectedForLimit = true;
			return parallelLimitResponse();
		}
		const task = createTask(body);
		account.holdForTask(task.slots, () => tasksLib.taskEndsAt(task));
		callbacks.track(task);
		record.afterCreate = true;
		record.taskId = task.id;
		return createdResponse(task);
	}

	function handleQuery(req, taskId) {
		const authError = checkAuth(req);
		if (authError) return authError;
		// Queries are served by a replica that is queryLagMs behind (callbacks come from the
		// primary): it answers a past state, and does not know a task created within the lag.
		const task = tasks.get(taskId);
		const seenAt = clock() - (task?.queryLagMs ?? options.queryLagMs);
		if (!task || seenAt < task.createdAt) {
			return errorResponse(options.taskNotExistStatus, CODE_TASK_NOT_EXIST, 'task_not_exist');
		}
		const data = wire.taskData(task, seenAt);
		return jsonResponse(200, wire.success(data, { request_id: newRequestId() }));
	}

	function apiRoute(req) {
		const pathname = req.url.split('?')[0];
		if (req.method === 'POST' && pathname === CREATE_PATH) return { name: 'create' };
		const match = req.method === 'GET' && QUERY_RE.exec(pathname);
		if (match) return { name: 'query', taskId: web.safeDecode(match[1]) };
		return { name: 'other' };
	}

	async function handleApi(req, res) {
		const record = recordRequest('api', req);
		const rawBody = await web.readBody(req, options.maxBodyBytes);
		record.body = rawBody === undefined ? '<body too large>' : web.parseBody(rawBody);
		const route = apiRoute(req);
		record.route = route.name;
		if (route.name === 'create') record.afterCreate = false;
		if (route.name === 'query') record.taskId = route.taskId;
		if (route.name === 'other') return web.send(req, res, record, pageNotFound());
		const process = () =>
			route.name === 'create' ? handleCreate(req, rawBody, record) : handleQuery(req, route.taskId);
		return serveWithFault(req, res, record, faults.take(route.name), process, route.name === 'create');
	}

	// --- image server ---------------------------------------------------------------

	function resolveImage(pathname) {
		const match = IMAGE_RE.exec(pathname);
		if (!match) return undefined;
		const [, rawId, indexText, wm, ext] = match;
		const task = tasks.get(web.safeDecode(rawId));
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

	function handleImage(req, image) {
		if (!image) return notFound(req);
		const { task } = image;
		if (task.expiredStatus) return expiredResponse(task.expiredStatus);
		// Results only exist once the task has succeeded.
		if (taskState(task, clock()).status !== 'succeed') return notFound(req);
		const plan = imagePlan(image);
		return { status: 200, headers: { 'content-type': plan.contentType }, plan };
	}

	function oversizeResponse(image, bytes) {
		const base = image ? imageBase(image) : images.encodeBase('png', 64, 64, images.styleFromSeed('oversize'));
		const plan = images.planFromBase(base, bytes);
		return { status: 200, headers: { 'content-type': plan.contentType }, plan };
	}

	async function handleImageRequest(req, res) {
		const record = recordRequest('image', req);
		record.body = web.parseBody((await web.readBody(req, 1024 * 1024)) ?? Buffer.alloc(0));
		const pathname = req.url.split('?')[0];
		const isImageRoute = (req.method === 'GET' || req.method === 'HEAD') && IMAGE_RE.test(pathname);
		record.route = isImageRoute ? 'image' : 'other';
		if (!isImageRoute) return web.send(req, res, record, notFound(req));
		const image = resolveImage(pathname);
		if (image) Object.assign(record, { taskId: image.task.id, index: image.index, kind: image.kind });
		// The API key must never reach the image host: reject before anything else, faults included.
		if (req.headers.authorization !== undefined) {
			record.rejectedAuthorization = true;
			const message = 'Authorization header not allowed on the image host';
			return web.send(req, res, record, jsonResponse(403, { code: 403, message }));
		}
		const fault = faults.take('image');
		if (fault?.type === 'oversize') {
			record.fault = fault.type;
			return web.send(req, res, record, oversizeResponse(image, fault.bytes));
		}
		return serveWithFault(req, res, record, fault, () => handleImage(req, image), false);
	}

	// --- faults -------------------------------------------------------------------

	/**
	 * Applies `fault` (if any) around the normal handler `process`. For create, `process`
	 * has side effects, so it runs exactly when the task should exist afterwards.
	 */
	async function serveWithFault(req, res, record, fault, process, sideEffects) {
		if (!fault) return web.send(req, res, record, process());
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
				return web.send(req, res, record, response);
			case 'contentType':
				return web.send(req, res, record, {
					...response,
					headers: { ...response.headers, 'content-type': fault.contentType },
				});
			case 'dropMidBody':
			case 'truncate': {
				const bytes = fault.bytes ?? Math.floor(response.plan.length / 2);
				return web.send(req, res, record, response, { bytes, then: fault.type === 'truncate' ? 'end' : 'destroy' });
			}
			case 'trickle': {
				const how = { intervalMs: fault.intervalMs, bytes: fault.bytes, padWithSpaces: record.route !== 'image' };
				return web.sendTrickle(req, res, record, response, how, sleep, () => closed);
			}
			default:
				return web.send(req, res, record, faultResponse(fault, record.route));
		}
	}

	// --- servers ------------------------------------------------------------------

	const sockets = new Set();
	const apiServer = web.makeServer(handleApi, sockets);
	const imageServer = web.makeServer(handleImageRequest, sockets);
	const apiAddress = await web.listen(apiServer, options.apiPort, options.apiHost);
	let imageAddress;
	try {
		imageAddress = await web.listen(imageServer, options.imagePort, options.imageHost);
	} catch (err) {
		await new Promise((resolve) => apiServer.close(resolve));
		throw err;
	}
	const apiUrl = `http://${web.hostForUrl(options.apiHost)}:${apiAddress.port}`;
	imageUrl = `http://${web.hostForUrl(options.imageHost)}:${imageAddress.port}`;

	function getTask(taskId) {
		const task = tasks.get(taskId);
		if (!task) throw new Error(`Unknown task: ${taskId}`);
		return task;
	}

	function wakeSleepers() {
		for (const sleeper of sleepers) {
			clearTimeout(sleeper.timer);
			sleeper.resolve();
		}
		sleepers.clear();
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
		addFault: (fault) => faults.add(fault),
		clearFaults: () => faults.clear(),
		failTask(taskId, reason = DEFAULT_FAIL_REASON) {
			const task = getTask(taskId);
			task.failedAt = clock();
			task.failReason = reason;
			callbacks.wake(taskId);
		},
		expireImages(expireOptions = {}) {
			const status = expireOptions.status ?? 404;
			const targets = expireOptions.taskId ? [getTask(expireOptions.taskId)] : tasks.values();
			for (const task of targets) task.expiredStatus = status;
		},
		// account
		setParallelSlots: (n) => account.setLimit(n),
		occupySlots: (slots, durationMs) => account.occupy(slots, durationMs),
		slotsInUse: () => account.slotsInUse(),
		stats: () => account.stats(),
		// callbacks
		callbacks: () => callbacks.records(),
		flushCallbacks: () => callbacks.flush(),
		sendForgedCallback: (url, forgeOptions) => callbacks.sendForged(url, forgeOptions),
		sendMalformedCallback: (url, kind) => callbacks.sendMalformed(url, kind),
		reset() {
			requests.length = 0;
			tasks.clear();
			externalIds.clear();
			taskNumber = 0;
			faults.clear();
			account.reset();
			callbacks.reset();
		},
		async close() {
			if (closed) return;
			closed = true;
			callbacks.close();
			wakeSleepers();
			await web.closeServers([apiServer, imageServer], sockets);
		},
	};
}

function dropUndefined(obj) {
	return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));
}

module.exports = {
	startSimulator,
	startEchoServer,
	createReferencePng: images.createReferencePng,
	createReferenceJpeg: images.createReferenceJpeg,
	readImageSize: images.readImageSize,
};
