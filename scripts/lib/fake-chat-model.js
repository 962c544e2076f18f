'use strict';
/*
 * A scripted stand-in for an OpenAI-compatible chat model, on loopback, for the AI agent example
 * (examples/4-ai-agent.json) in `npm start` and for the end-to-end test (test/e2e/agent.e2e.test.ts).
 * It is not a language model: it follows a two-step script.
 *
 *   1. A request with `tools` whose last message is the user's: it calls one tool (`tool_calls`,
 *      finish_reason "tool_calls") — the first tool whose name or description mentions an image, with
 *      every parameter filled from the user's message (see `argumentsFor`).
 *   2. A request whose last message is a tool result: a final text that says it comes from the stand-in,
 *      quotes what the tool answered and shows the image URLs it found in it.
 *
 * Routes: POST /v1/chat/completions (plain JSON, or server-sent events when `stream` is true),
 * GET /v1/models. POST /v1/responses answers 404 with a message to turn the Responses API off in n8n's
 * OpenAI Chat Model node. Every request is recorded in `requests`.
 * Plain CommonJS, Node stdlib only.
 */
const crypto = require('node:crypto');
const http = require('node:http');

const MODEL_ID = 'scripted-stand-in';
/** Every answer starts with this, so nobody mistakes the demo for a real model. */
const STAND_IN_LABEL =
	'[Scripted stand-in model, not a real LLM: set OPENAI_API_KEY (and OPENAI_BASE_URL) before `npm start` to use yours.]';

function textOf(content) {
	if (typeof content === 'string') return content;
	if (Array.isArray(content)) {
		return content
			.map((part) => (typeof part === 'string' ? part : part && part.type === 'text' ? part.text : ''))
			.join('');
	}
	return '';
}

/** Default tool arguments: strings get the user's message, numbers 1, booleans false. */
function defaultArgumentsFor({ tool, userText }) {
	const properties = tool.function?.parameters?.properties || {};
	const args = {};
	for (const [key, schema] of Object.entries(properties)) {
		const type = Array.isArray(schema?.type) ? schema.type[0] : schema?.type;
		if (type === 'number' || type === 'integer') args[key] = 1;
		else if (type === 'boolean') args[key] = false;
		else if (type === 'object') args[key] = {};
		else if (type === 'array') args[key] = [];
		else args[key] = userText;
	}
	return args;
}

function pickTool(tools) {
	return tools.find((t) => /image/i.test(`${t.function?.name} ${t.function?.description}`)) || tools[0];
}

/** A short final answer from a tool result: what it said, and the image URLs in it as Markdown images. */
function defaultAnswer({ toolResult, label }) {
	let parsed;
	try {
		parsed = JSON.parse(toolResult);
	} catch {}
	const first = Array.isArray(parsed) ? parsed[0] : parsed;
	const error = first && typeof first === 'object' ? first.error : undefined;
	if (error) {
		return `${label}\n\nThe image tool reported a problem, so no image was made:\n\n> ${String(error).replace(/\n/g, '\n> ')}`;
	}
	const urls = [...new Set(String(toolResult).match(/https?:\/\/[^\s"'\\)]+/g) || [])];
	const quoted = toolResult.length > 1500 ? `${toolResult.slice(0, 1500)}…` : toolResult;
	return [
		label,
		'',
		'The image tool answered:',
		'',
		'```json',
		quoted,
		'```',
		...(urls.length ? ['', ...urls.map((url, i) => `![image ${i + 1}](${url})`)] : []),
	].join('\n');
}

/**
 * Starts the stand-in. Options:
 *   host, port            where to listen (default 127.0.0.1, a free port)
 *   apiKey                when set, requests must send `Authorization: Bearer <apiKey>` (else 401)
 *   label                 the first line of every text answer (default STAND_IN_LABEL)
 *   chooseTool({tools, userText, body})    the tool to call, or null to answer without calling one
 *                                          (default: the first tool that mentions an image)
 *   argumentsFor({tool, userText, body})  the arguments of the tool call (default: defaultArgumentsFor)
 *   answer({toolResult, label, body})     the final text (default: defaultAnswer)
 * Resolves with {url (base URL ending in /v1), apiKey, model, requests, chatRequests(), close()}.
 */
async function startFakeChatModel(options = {}) {
	const {
		host = '127.0.0.1',
		port = 0,
		apiKey,
		label = STAND_IN_LABEL,
		chooseTool = ({ tools }) => pickTool(tools),
		argumentsFor = defaultArgumentsFor,
		answer = defaultAnswer,
	} = options;
	const requests = [];

	function reply(body) {
		const messages = Array.isArray(body.messages) ? body.messages : [];
		const tools = Array.isArray(body.tools) ? body.tools : [];
		const last = messages[messages.length - 1];
		const lastUser = [...messages].reverse().find((m) => m.role === 'user');
		const userText = textOf(lastUser?.content).trim();
		if (last?.role === 'tool') {
			return { content: answer({ toolResult: textOf(last.content), label, body }), finishReason: 'stop' };
		}
		const tool = tools.length > 0 && last?.role === 'user' ? chooseTool({ tools, userText, body }) : undefined;
		if (tool) {
			const args = argumentsFor({ tool, userText, body });
			return {
				toolCalls: [
					{
						id: `call_${crypto.randomBytes(8).toString('hex')}`,
						type: 'function',
						function: { name: tool.function.name, arguments: JSON.stringify(args) },
					},
				],
				finishReason: 'tool_calls',
			};
		}
		return {
			content: `${label}\n\n${tools.length ? 'I did not call a tool this time.' : 'No tool is connected to the agent, so no image can be made.'}`,
			finishReason: 'stop',
		};
	}

	function completion(body, result) {
		const message = { role: 'assistant', content: result.content ?? null };
		if (result.toolCalls) message.tool_calls = result.toolCalls;
		return {
			id: `chatcmpl-${crypto.randomBytes(8).toString('hex')}`,
			object: 'chat.completion',
			created: Math.floor(Date.now() / 1000),
			model: body.model || MODEL_ID,
			choices: [{ index: 0, message, logprobs: null, finish_reason: result.finishReason }],
			usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
		};
	}

	function streamCompletion(res, body, result) {
		const id = `chatcmpl-${crypto.randomBytes(8).toString('hex')}`;
		const created = Math.floor(Date.now() / 1000);
		const model = body.model || MODEL_ID;
		const chunk = (delta, finishReason = null, extra = {}) =>
			`data: ${JSON.stringify({
				id,
				object: 'chat.completion.chunk',
				created,
				model,
				choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
				...extra,
			})}\n\n`;
		res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
		res.write(chunk({ role: 'assistant', content: '' }));
		if (result.toolCalls) {
			res.write(
				chunk({
					tool_calls: result.toolCalls.map((call, index) => ({ index, ...call })),
				}),
			);
		} else {
			res.write(chunk({ content: result.content }));
		}
		res.write(chunk({}, result.finishReason));
		if (body.stream_options?.include_usage) {
			res.write(
				`data: ${JSON.stringify({
					id,
					object: 'chat.completion.chunk',
					created,
					model,
					choices: [],
					usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
				})}\n\n`,
			);
		}
		res.end('data: [DONE]\n\n');
	}

	function sendJson(res, status, value) {
		const text = JSON.stringify(value);
		res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
		res.end(text);
	}

	const server = http.createServer((req, res) => {
		const chunks = [];
		req.on('data', (d) => chunks.push(d));
		req.on('end', () => {
			const raw = Buffer.concat(chunks).toString('utf8');
			let body;
			try {
				body = raw ? JSON.parse(raw) : undefined;
			} catch {
				body = raw;
			}
			const path = (req.url || '').split('?')[0];
			const record = { method: req.method, path, headers: req.headers, body };
			requests.push(record);
			if (apiKey && req.headers.authorization !== `Bearer ${apiKey}`) {
				return sendJson(res, 401, {
					error: { message: 'Incorrect API key provided (stand-in model)', type: 'invalid_request_error', code: 'invalid_api_key' },
				});
			}
			if (req.method === 'GET' && /\/models$/.test(path)) {
				return sendJson(res, 200, {
					object: 'list',
					data: [{ id: MODEL_ID, object: 'model', created: 0, owned_by: 'stand-in' }],
				});
			}
			if (req.method === 'POST' && /\/chat\/completions$/.test(path)) {
				if (!body || typeof body !== 'object') {
					return sendJson(res, 400, { error: { message: 'The body is not JSON', type: 'invalid_request_error' } });
				}
				const result = reply(body);
				record.reply = result;
				if (body.stream) return streamCompletion(res, body, result);
				return sendJson(res, 200, completion(body, result));
			}
			if (req.method === 'POST' && /\/responses$/.test(path)) {
				return sendJson(res, 404, {
					error: {
						message:
							"The stand-in model only serves /v1/chat/completions: turn off 'Use Responses API' in the OpenAI Chat Model node",
						type: 'invalid_request_error',
					},
				});
			}
			return sendJson(res, 404, { error: { message: `No route ${req.method} ${path}`, type: 'invalid_request_error' } });
		});
	});
	await new Promise((resolve, reject) => {
		server.once('error', reject);
		server.listen(port, host, resolve);
	});
	const address = server.address();
	return {
		url: `http://${host}:${address.port}/v1`,
		apiKey,
		model: MODEL_ID,
		label,
		requests,
		/** The chat-completion requests, in order. */
		chatRequests: () => requests.filter((r) => r.method === 'POST' && /\/chat\/completions$/.test(r.path)),
		close: () =>
			new Promise((resolve) => {
				server.closeAllConnections?.();
				server.close(() => resolve());
			}),
	};
}

module.exports = { startFakeChatModel, STAND_IN_LABEL, MODEL_ID, defaultArgumentsFor, defaultAnswer };
