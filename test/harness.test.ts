/**
 * Proves the harness: a tiny inline node runs through n8n-core's real
 * ExecuteContext, talks to a throwaway loopback server and stores binary data
 * with n8n's BinaryDataService.
 */
import { existsSync } from 'node:fs';
import * as http from 'node:http';
import type { Readable } from 'node:stream';

import type {
	IAuthenticateGeneric,
	ICredentialType,
	IExecuteFunctions,
	IHttpRequestOptions,
	INodeExecutionData,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeApiError, NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import {
	binaryToBuffer,
	harnessPaths,
	INPUT_NODE_NAME,
	makeBinary,
	runNode,
	withExecuteFunctions,
} from './harness';
import { closeServer, listenOnLoopback } from './support/net';
import { sleep } from './support/wait';

// ---------------------------------------------------------------------------
// Loopback server
// ---------------------------------------------------------------------------

const PNG_BYTES = Buffer.concat([
	Buffer.from('89504e470d0a1a0a', 'hex'),
	Buffer.from('not really a png, but bytes are bytes: \u00ff\u0000\u0001', 'latin1'),
]);

interface SeenRequest {
	url: string;
	headers: http.IncomingHttpHeaders;
}

let server: http.Server;
let baseUrl: string;
const seen: SeenRequest[] = [];

beforeAll(async () => {
	server = http.createServer((req, res) => {
		seen.push({ url: req.url ?? '', headers: req.headers });
		const url = new URL(req.url ?? '/', 'http://x');
		if (url.pathname === '/echo') {
			res.writeHead(200, { 'content-type': 'application/json' });
			res.end(
				JSON.stringify({
					authorization: req.headers.authorization ?? null,
					query: Object.fromEntries(url.searchParams),
				}),
			);
		} else if (url.pathname === '/files/kitten.png') {
			res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG_BYTES.length });
			res.end(PNG_BYTES);
		} else if (url.pathname === '/unauthorized') {
			res.writeHead(401, { 'content-type': 'application/json' });
			res.end(JSON.stringify({ code: 'unauthorized', message: 'bad key' }));
		} else if (url.pathname === '/hang') {
			// Never answers: only an abort gets the client out.
		} else {
			res.writeHead(404).end();
		}
	});
	baseUrl = await listenOnLoopback(server);
});

afterAll(async () => {
	await closeServer(server);
});

beforeEach(() => {
	seen.length = 0;
});

// ---------------------------------------------------------------------------
// Inline credential type + node
// ---------------------------------------------------------------------------

class TestApi implements ICredentialType {
	name = 'testApi';
	displayName = 'Test API';
	properties = [
		{ displayName: 'API Key', name: 'apiKey', type: 'string' as const, default: '' },
		{ displayName: 'Base URL', name: 'baseUrl', type: 'string' as const, default: 'http://0.0.0.0:9' },
		{ displayName: 'Region', name: 'region', type: 'string' as const, default: 'eu-1' },
	];
	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: { Authorization: '=Bearer {{$credentials.apiKey}}' },
			qs: { region: '={{$credentials.region}}' },
		},
	};
}

async function streamToBuffer(stream: Readable): Promise<Buffer> {
	const chunks: Buffer[] = [];
	for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
	return Buffer.concat(chunks);
}

class ProbeNode implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'Probe',
		name: 'harnessProbe',
		group: ['transform'],
		version: 1,
		description: 'Exercises the harness',
		defaults: { name: 'Probe' },
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'testApi', required: true }],
		properties: [
			{
				displayName: 'Action',
				name: 'action',
				type: 'options',
				options: [
					{ name: 'Authenticated Request', value: 'auth' },
					{ name: 'Download', value: 'download' },
					{ name: 'Store Buffer', value: 'storeBuffer' },
					{ name: 'Read Input Binary', value: 'readInput' },
					{ name: 'Echo', value: 'echo' },
				],
				default: 'echo',
			},
			{ displayName: 'Path', name: 'path', type: 'string', default: '/echo' },
			{ displayName: 'Task ID', name: 'taskId', type: 'string', default: '' },
			{ displayName: 'Pass File Name and MIME Type', name: 'passFileMeta', type: 'boolean', default: true },
			{ displayName: 'Input Binary Field', name: 'binaryPropertyName', type: 'string', default: 'data' },
		],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const out: INodeExecutionData[] = [];
		for (let i = 0; i < items.length; i++) {
			try {
				const action = this.getNodeParameter('action', i) as string;
				const path = this.getNodeParameter('path', i) as string;
				if (action === 'auth') {
					const credentials = await this.getCredentials('testApi', i);
					const options: IHttpRequestOptions = { url: `${credentials.baseUrl as string}${path}`, json: true };
					const body = await this.helpers.httpRequestWithAuthentication.call(this, 'testApi', options);
					out.push({ json: { body, region: credentials.region }, pairedItem: { item: i } });
				} else if (action === 'download') {
					const { baseUrl: url } = await this.getCredentials('testApi', i);
					const response = await this.helpers.httpRequest({
						url: `${url as string}${path}`,
						encoding: 'stream',
						returnFullResponse: true,
					});
					// n8n 2.x's httpRequest hands back a plain Readable (not an IncomingMessage), so
					// prepareBinaryData cannot sniff name/type from it: a node must pass them.
					const binary = this.getNodeParameter('passFileMeta', i)
						? await this.helpers.prepareBinaryData(
								response.body as Readable,
								new URL(path, 'http://x').pathname.split('/').pop(),
								String(response.headers['content-type']),
							)
						: await this.helpers.prepareBinaryData(response.body as Readable);
					out.push({ json: { status: response.statusCode }, binary: { data: binary }, pairedItem: { item: i } });
				} else if (action === 'storeBuffer') {
					const binary = await this.helpers.prepareBinaryData(Buffer.from('hello, n8n'), 'note.txt', 'text/plain');
					out.push({ json: {}, binary: { data: binary }, pairedItem: { item: i } });
				} else if (action === 'readInput') {
					const field = this.getNodeParameter('binaryPropertyName', i) as string;
					const meta = this.helpers.assertBinaryData(i, field);
					const buffer = await this.helpers.getBinaryDataBuffer(i, field);
					const streamed = meta.id
						? (await streamToBuffer(await this.helpers.getBinaryStream(meta.id))).toString('base64')
						: null;
					out.push({
						json: {
							text: buffer.toString('utf8'),
							fileName: meta.fileName,
							mimeType: meta.mimeType,
							stored: meta.id ? 'id' : 'inline',
							streamedMatches: streamed === null ? null : streamed === buffer.toString('base64'),
						},
						pairedItem: { item: i },
					});
				} else {
					out.push({
						json: {
							taskId: this.getNodeParameter('taskId', i) as string,
							nodeName: this.getNode().name,
							hasCancelSignal: this.getExecutionCancelSignal() !== undefined,
						},
						pairedItem: { item: i },
					});
				}
			} catch (error) {
				if (this.continueOnFail()) {
					out.push({ json: { error: (error as Error).message }, pairedItem: { item: i } });
					continue;
				}
				if (error instanceof NodeApiError || error instanceof NodeOperationError) throw error;
				throw new NodeOperationError(this.getNode(), error as Error, { itemIndex: i });
			}
		}
		return [out];
	}
}

const base = () => ({
	nodeType: new ProbeNode(),
	credentialType: new TestApi(),
	credentials: { apiKey: 'sim-key', baseUrl },
});

// ---------------------------------------------------------------------------

describe('harness', () => {
	it('applies the credential authenticate (headers + qs) and type defaults on the real request path', async () => {
		const { output, error } = await runNode({ ...base(), parameters: { action: 'auth', path: '/echo' } });

		expect(error).toBeUndefined();
		expect(output[0][0].json).toEqual({
			body: { authorization: 'Bearer sim-key', query: { region: 'eu-1' } },
			region: 'eu-1',
		});
		expect(seen).toHaveLength(1);
		expect(seen[0].headers.authorization).toBe('Bearer sim-key');
	});

	it('stores a streamed download with prepareBinaryData in filesystem mode', async () => {
		const { output, error } = await runNode({
			...base(),
			binaryMode: 'filesystem',
			parameters: { action: 'download', path: '/files/kitten.png' },
		});

		expect(error).toBeUndefined();
		const binary = output[0][0].binary!.data;
		expect(binary.id).toMatch(/^filesystem-v2:/);
		expect(binary.mimeType).toBe('image/png');
		expect(binary.fileName).toBe('kitten.png');
		expect(binary.fileExtension).toBe('png');
		expect(binary.bytes).toBe(PNG_BYTES.length);
		expect(await binaryToBuffer(binary)).toEqual(PNG_BYTES);
		expect(existsSync(harnessPaths().binaryDataPath)).toBe(true);
	});

	it('documents n8n-core: a streamed body without name/type is stored as text/plain', async () => {
		const { output, error } = await runNode({
			...base(),
			parameters: { action: 'download', path: '/files/kitten.png', passFileMeta: false },
		});

		expect(error).toBeUndefined();
		const binary = output[0][0].binary!.data;
		expect(binary.mimeType).toBe('text/plain');
		expect(binary.fileName).toBeUndefined();
		expect(await binaryToBuffer(binary)).toEqual(PNG_BYTES);
	});

	it('keeps binary data in memory (base64) in default mode', async () => {
		const { output, error } = await runNode({
			...base(),
			binaryMode: 'default',
			parameters: { action: 'storeBuffer' },
		});

		expect(error).toBeUndefined();
		const binary = output[0][0].binary!.data;
		expect(binary.id).toBeUndefined();
		expect(binary.data).toBe(Buffer.from('hello, n8n').toString('base64'));
		expect(binary).toMatchObject({ fileName: 'note.txt', mimeType: 'text/plain' });
		expect((await binaryToBuffer(binary)).toString()).toBe('hello, n8n');
	});

	it('resolves expression parameters per item ($json and $("Input"))', async () => {
		const { output, error } = await runNode({
			...base(),
			parameters: { action: 'echo', taskId: `={{ $json.task_id }}-{{ $('${INPUT_NODE_NAME}').item.json.n }}` },
			inputItems: [{ json: { task_id: 'a', n: 1 } }, { json: { task_id: 'b', n: 2 } }],
		});

		expect(error).toBeUndefined();
		expect(output[0].map((item) => item.json.taskId)).toEqual(['a-1', 'b-2']);
		expect(output[0][0].json).toMatchObject({ nodeName: 'Probe', hasCancelSignal: true });
	});

	it.each(['filesystem', 'default'] as const)(
		'reads input binary made with makeBinary (%s) via getBinaryDataBuffer',
		async (mode) => {
			const data = await makeBinary(Buffer.from('input bytes'), 'in.txt', 'text/plain', { mode });
			const { output, error } = await runNode({
				...base(),
				binaryMode: mode,
				parameters: { action: 'readInput' },
				inputItems: [{ json: {}, binary: { data } }],
			});

			expect(error).toBeUndefined();
			expect(output[0][0].json).toEqual({
				text: 'input bytes',
				fileName: 'in.txt',
				mimeType: 'text/plain',
				stored: mode === 'filesystem' ? 'id' : 'inline',
				streamedMatches: mode === 'filesystem' ? true : null,
			});
		},
	);

	it('returns node errors, or error items with continueOnFail', async () => {
		const failing = { ...base(), parameters: { action: 'auth', path: '/unauthorized' } };

		const stopped = await runNode(failing);
		expect(stopped.output).toEqual([]);
		expect(stopped.error).toBeInstanceOf(NodeApiError);
		expect((stopped.error as NodeApiError).httpCode).toBe('401');

		const continued = await runNode({ ...failing, continueOnFail: true });
		expect(continued.error).toBeUndefined();
		expect(continued.output[0][0].json.error).toEqual(expect.any(String));
	});

	it('wires abortSignal to getExecutionCancelSignal (aborts in-flight requests)', async () => {
		const controller = new AbortController();
		const run = runNode({ ...base(), abortSignal: controller.signal, parameters: { action: 'auth', path: '/hang' } });
		await sleep(100);
		controller.abort();

		const { error } = await run;
		expect(error).toBeInstanceOf(NodeApiError);
		expect(controller.signal.aborted).toBe(true);
		expect(seen.map((r) => r.url)).toEqual(['/hang?region=eu-1']);
	});

	it('gives direct access to the n8n-core ExecuteContext', async () => {
		const got = await withExecuteFunctions(
			{ ...base(), parameters: { taskId: '={{ $json.id }}' }, inputItems: [{ json: { id: 'x' } }] },
			async (ctx) => ({
				taskId: ctx.getNodeParameter('taskId', 0),
				credentials: await ctx.getCredentials('testApi'),
			}),
		);
		expect(got).toEqual({
			taskId: 'x',
			credentials: { apiKey: 'sim-key', baseUrl, region: 'eu-1' },
		});
	});
});
