/*
 * The example workflows run inside real n8n (the default version, 2.41.1) with the packed package installed
 * as a community package, against the CometAPI simulator, in n8n's filesystem binary-data mode.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
	E2EInstance,
	EXAMPLES,
	ExecResult,
	expectSuccess,
	FAIL_MARKER,
	FAIL_REASON,
	Item,
	KLING_NODE_TYPE,
	nodeNamed,
	PACKAGE_NAME,
	pairedIndex,
	removeNodes,
	setField,
} from './harness';

const REFERENCE_NODE = 'Reference image (Base64)';

let e2e: E2EInstance;

beforeAll(async () => {
	e2e = await E2EInstance.create('examples');
});

afterAll(async () => {
	await e2e?.close();
});

/** The checks every image item must pass: MIME type, file name, bytes equal to what the simulator served. */
function expectImageItem(item: Item, taskId: string, index: number, binaryField = 'data'): Buffer {
	const binary = item.binary?.[binaryField];
	expect(binary).toBeDefined();
	expect(binary!.mimeType).toBe('image/png');
	expect(binary!.fileExtension).toBe('png');
	expect(binary!.fileName).toBe(`kling-${taskId}-${index}.png`);
	// Filesystem binary-data mode: n8n stores the bytes in its storage folder, not inline.
	expect(binary!.id).toMatch(/^filesystem/);
	const bytes = e2e.binaryBytes(binary!);
	const url = item.json.image?.url ?? item.json.images[index].url;
	expect(bytes.equals(e2e.sim.expectedImageBytes(url))).toBe(true);
	return bytes;
}

describe(`the package inside n8n (${PACKAGE_NAME} installed from its npm pack tarball)`, () => {
	test('is installed where n8n keeps community packages, without dev or peer dependencies', () => {
		const dir = path.join(e2e.n8nFolder, 'nodes', 'node_modules', PACKAGE_NAME);
		const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
		expect(manifest.name).toBe(PACKAGE_NAME);
		expect(manifest.peerDependencies).toBeUndefined();
		expect(manifest.devDependencies).toBeUndefined();
		for (const file of manifest.n8n.nodes.concat(manifest.n8n.credentials)) {
			expect(fs.existsSync(path.join(dir, file))).toBe(true);
		}
		const installed = JSON.parse(fs.readFileSync(path.join(e2e.n8nFolder, 'nodes', 'package.json'), 'utf8'));
		expect(installed.dependencies[PACKAGE_NAME]).toBe(manifest.version);
	});

	test('example workflows reference the node by its community package type', () => {
		const types = Object.keys(EXAMPLES).flatMap((key) =>
			e2e.example(key as keyof typeof EXAMPLES).nodes.map((n: { type: string }) => n.type),
		);
		expect(types).toContain(`${PACKAGE_NAME}.klingOmniImage`);
		expect(KLING_NODE_TYPE).toBe(`${PACKAGE_NAME}.klingOmniImage`);
	});
});

describe('example 1: prompt + reference image from an earlier node → Create Omni Image (waits) → files on disk', () => {
	let result: ExecResult;
	let requestsBefore: number;

	beforeAll(async () => {
		requestsBefore = e2e.sim.requests.length;
		result = await e2e.execute(EXAMPLES.diskFiles.id);
	});

	test('runs successfully', () => {
		expectSuccess(result);
		expect(e2e.task(result, 'Create Omni Image').executionStatus).toBe('success');
	});

	test('sends the reference image from the earlier node’s binary output as Base64, with the API key', () => {
		const creates = e2e.sim.requests.slice(requestsBefore).filter((r) => r.route === 'create');
		expect(creates).toHaveLength(1);
		const [create] = creates;
		expect(create.headers.authorization).toBe(`Bearer ${e2e.apiKey}`);
		const referenceBase64 = setField(e2e.example('diskFiles'), REFERENCE_NODE, 'reference_png').value;
		expect(create.body.image_list).toEqual([{ image: referenceBase64 }]);
		expect(create.body.prompt).toContain('<<<image_1>>>');
		expect(create.body.n).toBe(2);
		// The reference binary the node read is the one n8n holds for "Reference image to file".
		const [reference] = e2e.output(result, 'Reference image to file');
		expect(e2e.binaryBytes(reference.binary!.reference).toString('base64')).toBe(referenceBase64);
	});

	test('outputs one item per image, paired with the input item, with the image bytes the API served', () => {
		const items = e2e.output(result, 'Create Omni Image');
		expect(items).toHaveLength(2);
		const taskId = items[0].json.task_id;
		expect(taskId).toBeTruthy();
		items.forEach((item, index) => {
			expect(item.json.task_id).toBe(taskId);
			expect(item.json.status).toBe('succeed');
			expect(item.json.image.index).toBe(index);
			expect(item.json.images).toHaveLength(2);
			expect(pairedIndex(item)).toBe(0);
			expectImageItem(item, taskId, index);
		});
	});

	test('writes each image to disk with the bytes n8n holds', () => {
		const created = e2e.output(result, 'Create Omni Image');
		const written = e2e.output(result, 'Write Files to Disk');
		expect(written).toHaveLength(2);
		written.forEach((item, index) => {
			const expectedPath = path.join(e2e.outputFolder, created[index].binary!.data.fileName!);
			expect(item.json.fileName).toBe(expectedPath);
			expect(pairedIndex(item)).toBe(index);
			const onDisk = fs.readFileSync(expectedPath);
			expect(onDisk.equals(e2e.binaryBytes(created[index].binary!.data))).toBe(true);
			expect(onDisk.equals(e2e.sim.expectedImageBytes(created[index].json.image.url))).toBe(true);
		});
	});
});

describe('example 2: scheduled batch → Create (no wait) → Wait for Completion → files and a summary', () => {
	let result: ExecResult;
	let requestsBefore: number;
	const prompts = () => JSON.parse(setField(e2e.example('scheduledBatch'), 'Prompts', 'prompts').value) as string[];

	beforeAll(async () => {
		requestsBefore = e2e.sim.requests.length;
		result = await e2e.execute(EXAMPLES.scheduledBatch.id);
	});

	test('runs successfully, started by its Manual Trigger (the Schedule Trigger runs once published)', () => {
		expectSuccess(result);
		expect(e2e.task(result, 'Run manually')?.executionStatus).toBe('success');
		expect(e2e.task(result, 'Every morning')).toBeUndefined();
	});

	test('submits one task per prompt without waiting', () => {
		const submitted = e2e.output(result, 'Submit tasks');
		expect(submitted).toHaveLength(prompts().length);
		submitted.forEach((item, index) => {
			expect(item.json.status).toBe('submitted');
			expect(item.binary).toBeUndefined();
			expect(pairedIndex(item)).toBe(index);
		});
		expect(new Set(submitted.map((i) => i.json.task_id)).size).toBe(submitted.length);
		const creates = e2e.sim.requests.slice(requestsBefore).filter((r) => r.route === 'create');
		expect(creates.map((r) => r.body.prompt).sort()).toEqual([...prompts()].sort());
		// Submitting did not wait: each create came back before any task was queried.
		const firstQuery = e2e.sim.requests.slice(requestsBefore).findIndex((r) => r.route === 'query');
		const lastCreate = e2e.sim.requests.slice(requestsBefore).map((r) => r.route).lastIndexOf('create');
		expect(lastCreate).toBeLessThan(firstQuery);
	});

	test('waits for all tasks and outputs one item per image, each paired with its task item', () => {
		const submitted = e2e.output(result, 'Submit tasks');
		const done = e2e.output(result, 'Wait for Completion');
		expect(done).toHaveLength(submitted.length);
		done.forEach((item) => {
			const from = pairedIndex(item)!;
			expect(item.json.task_id).toBe(submitted[from].json.task_id);
			expect(item.json.status).toBe('succeed');
			expectImageItem(item, item.json.task_id, 0);
		});
	});

	test('writes the files and summarises the batch', () => {
		const done = e2e.output(result, 'Wait for Completion');
		for (const item of done) {
			const file = path.join(e2e.outputFolder, 'batch', item.binary!.data.fileName!);
			expect(fs.readFileSync(file).equals(e2e.sim.expectedImageBytes(item.json.image.url))).toBe(true);
		}
		const [summary] = e2e.output(result, 'Summary');
		expect(summary.json.images).toBe(prompts().length);
		expect(summary.json.tasks).toBe(prompts().length);
		expect(summary.json.prompts).toBe(prompts().length);
		expect(summary.json.files).toHaveLength(prompts().length);
		expect(summary.json.summary).toMatch(new RegExp(`^${prompts().length} images from ${prompts().length} tasks`));
	});
});

describe('example 3: images handed to a chat or storage service as multipart uploads by the HTTP Request node', () => {
	let result: ExecResult;
	let uploadsBefore: number;

	beforeAll(async () => {
		uploadsBefore = e2e.receiver.uploads.length;
		result = await e2e.execute(EXAMPLES.upload.id);
	});

	test('runs successfully', () => {
		expectSuccess(result);
	});

	test('the endpoint receives each image once, with its file name, MIME type and the exact bytes', () => {
		const images = e2e.output(result, 'Create Omni Image');
		expect(images.length).toBe(3); // a series of 3
		const uploads = e2e.receiver.uploads.slice(uploadsBefore);
		expect(uploads).toHaveLength(images.length);
		for (const upload of uploads) {
			expect(upload.error).toBeUndefined();
			expect(upload.files).toHaveLength(1);
			const [file] = upload.files;
			const image = images.find((i) => i.binary!.data.fileName === file.fileName);
			expect(image).toBeDefined();
			expect(file.field).toBe('file');
			expect(file.mimeType).toBe('image/png');
			expect(file.bytes.equals(e2e.sim.expectedImageBytes(image!.json.image.url))).toBe(true);
			expect(upload.fields.task_id).toBe(image!.json.task_id);
			expect(upload.fields.index).toBe(String(image!.json.image.index));
			expect(upload.fields.title).toBe(file.fileName);
		}
		expect(new Set(uploads.map((u) => u.files[0].fileName)).size).toBe(images.length);
	});

	test('the HTTP Request node outputs the service’s answer for each image', () => {
		const answers = e2e.output(result, 'Upload image');
		expect(answers).toHaveLength(3);
		answers.forEach((answer, index) => {
			expect(answer.json.ok).toBe(true);
			expect(pairedIndex(answer)).toBe(index);
			expect(answer.json.files[0].size).toBeGreaterThan(0);
		});
	});
});

describe('options set on the node reach it inside n8n', () => {
	test('one item per task with the images in image_0, image_1, …', async () => {
		await e2e.importWorkflows([
			e2e.variant('diskFiles', 'klingE2eTaskPerItem', (wf) => {
				removeNodes(wf, ['Write Files to Disk']);
				const kling = nodeNamed(wf, 'Create Omni Image');
				kling.parameters.options = { ...kling.parameters.options, outputMode: 'taskPerItem', binaryPropertyName: 'image' };
			}),
		]);
		const result = await e2e.execute('klingE2eTaskPerItem');
		expectSuccess(result);
		const items = e2e.output(result, 'Create Omni Image');
		expect(items).toHaveLength(1);
		const [item] = items;
		expect(Object.keys(item.binary ?? {}).sort()).toEqual(['image_0', 'image_1']);
		expectImageItem(item, item.json.task_id, 0, 'image_0');
		expectImageItem(item, item.json.task_id, 1, 'image_1');
	});
});

describe('a failed task', () => {
	const failing = (id: string, continueOnFail: boolean) =>
		e2e.variant('diskFiles', id, (wf) => {
			setField(wf, 'Settings', 'prompt').value = `${FAIL_MARKER}: a picture the provider refuses`;
			if (continueOnFail) {
				nodeNamed(wf, 'Create Omni Image').onError = 'continueRegularOutput';
				removeNodes(wf, ['Write Files to Disk']);
			}
		});

	beforeAll(async () => {
		await e2e.importWorkflows([
			failing('klingE2eFailStops', false),
			failing('klingE2eFailContinues', true),
			e2e.variant('scheduledBatch', 'klingE2eBatchOneFails', (wf) => {
				setField(wf, 'Prompts', 'prompts').value = JSON.stringify(['a red kite', `${FAIL_MARKER} a blue kite`, 'a green kite']);
				nodeNamed(wf, 'Wait for Completion').onError = 'continueRegularOutput';
				// The error item has no image to write: the run ends at Wait for Completion.
				removeNodes(wf, ['Write Files to Disk', 'Collect files', 'Summary']);
			}),
		]);
	});

	test('stops the workflow with an error that names the task and the provider’s reason', async () => {
		const result = await e2e.execute('klingE2eFailStops');
		expect(result.ok).toBe(false);
		expect(result.code).not.toBe(0);
		const task = e2e.task(result, 'Create Omni Image');
		expect(task.executionStatus).toBe('error');
		const message = `${result.error?.message ?? ''} ${result.error?.description ?? ''}`;
		expect(message).toContain(FAIL_REASON);
		const [created] = e2e.sim.requests.filter((r) => r.route === 'create' && r.body.prompt.includes(FAIL_MARKER));
		expect(message).toContain(created.taskId);
		expect(e2e.task(result, 'Write Files to Disk')).toBeUndefined();
		expect(result.stdout).toContain('Execution was NOT successful');
	});

	test('becomes an error item with "continue on fail" (On Error: Continue)', async () => {
		const result = await e2e.execute('klingE2eFailContinues');
		expectSuccess(result);
		const items = e2e.output(result, 'Create Omni Image');
		expect(items).toHaveLength(1);
		const [item] = items;
		expect(item.json.error).toEqual(expect.stringContaining(FAIL_REASON));
		expect(item.json.task_id).toBeTruthy();
		expect(item.binary).toBeUndefined();
		expect(pairedIndex(item)).toBe(0);
	});

	test('in a batch, only the failed task becomes an error item; the others still deliver images', async () => {
		const result = await e2e.execute('klingE2eBatchOneFails');
		expectSuccess(result);
		const submitted = e2e.output(result, 'Submit tasks');
		const done = e2e.output(result, 'Wait for Completion');
		expect(submitted).toHaveLength(3);
		expect(done).toHaveLength(3);
		const byInput = new Map(done.map((item) => [pairedIndex(item), item]));
		expect(byInput.get(1)!.json.error).toEqual(expect.stringContaining(FAIL_REASON));
		expect(byInput.get(1)!.json.task_id).toBe(submitted[1].json.task_id);
		for (const index of [0, 2]) {
			const item = byInput.get(index)!;
			expect(item.json.task_id).toBe(submitted[index].json.task_id);
			expectImageItem(item, item.json.task_id, 0);
		}
	});
});

describe('the API key', () => {
	test('is absent from everything n8n stored and printed for the executions', async () => {
		const executions = await e2e.query('SELECT id, status, mode FROM execution_entity');
		expect(executions.length).toBeGreaterThanOrEqual(7); // the runs above were saved …
		const data = await e2e.query('SELECT executionId, data, workflowData FROM execution_data');
		expect(data.length).toBe(executions.length);
		for (const row of data) {
			expect(row.data).not.toContain(e2e.apiKey); // … without the key
			expect(row.workflowData).not.toContain(e2e.apiKey);
		}
		// The credential is stored, encrypted.
		const credentials = await e2e.query("SELECT data FROM credentials_entity WHERE type = 'cometApiKlingApi'");
		expect(credentials).toHaveLength(1);
		expect(credentials[0].data).not.toContain(e2e.apiKey);
		// Nothing in the user folder (database and its WAL, binary data, settings) holds it, plain or Base64 …
		expect(e2e.filesContaining(e2e.apiKey)).toEqual([]);
		// … nor anything n8n printed.
		for (const output of e2e.commandOutput) expect(output).not.toContain(e2e.apiKey);
		// The check is not vacuous: the simulator did receive the key.
		expect(e2e.sim.requests.some((r) => r.headers.authorization === `Bearer ${e2e.apiKey}`)).toBe(true);
	});
});
