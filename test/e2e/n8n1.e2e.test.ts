/*
 * n8n 1.x (1.123, the last 1.x line, on the system's Node 20) loads the package and runs the examples.
 * Skipped with KLING_E2E_N8N1=0.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeRun, E2EInstance, EXAMPLES, ExecResult, pairedIndex } from './harness';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { legacyEnabled } = require('./legacy');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const host = require('../../scripts/lib/n8n-host');

const describeLegacy = legacyEnabled() ? describe : describe.skip;

describeLegacy(`n8n ${host.LEGACY_N8N_VERSION} (last 1.x line, Node ${process.versions.node.split('.')[0]})`, () => {
	let e2e: E2EInstance;
	let result: ExecResult;

	beforeAll(async () => {
		e2e = await E2EInstance.create('n8n1', { version: host.LEGACY_N8N_VERSION });
		result = await e2e.execute(EXAMPLES.diskFiles.id);
	});

	afterAll(async () => {
		await e2e?.close();
	});

	test('runs on the system Node and loads the package', () => {
		expect(e2e.n8n.version.startsWith('1.')).toBe(true);
		expect(e2e.n8n.node.nodeBin).toBe(process.execPath);
		if (!result.ok) throw new Error(`example 1 failed on n8n 1.x: ${describeRun(result)}`);
	});

	test('example 1: one item per image, with the served bytes, written to disk', () => {
		const items = e2e.output(result, 'Create Omni Image');
		expect(items).toHaveLength(2);
		items.forEach((item, index) => {
			const binary = item.binary!.data;
			expect(binary.mimeType).toBe('image/png');
			expect(binary.fileName).toBe(`kling-${item.json.task_id}-${index}.png`);
			expect(binary.id).toMatch(/^filesystem/);
			expect(pairedIndex(item)).toBe(0);
			const expected = e2e.sim.expectedImageBytes(item.json.image.url);
			expect(e2e.binaryBytes(binary).equals(expected)).toBe(true);
			expect(fs.readFileSync(path.join(e2e.outputFolder, binary.fileName!)).equals(expected)).toBe(true);
		});
		expect(e2e.output(result, 'Write Files to Disk')).toHaveLength(2);
	});

	test('examples 2 and 3 run too: the batch summary and the uploaded bytes', async () => {
		const batch = await e2e.execute(EXAMPLES.scheduledBatch.id);
		if (!batch.ok) throw new Error(`example 2 failed on n8n 1.x: ${describeRun(batch)}`);
		const [summary] = e2e.output(batch, 'Summary');
		expect(summary.json.images).toBe(3);
		expect(summary.json.tasks).toBe(3);
		const upload = await e2e.execute(EXAMPLES.upload.id);
		if (!upload.ok) throw new Error(`example 3 failed on n8n 1.x: ${describeRun(upload)}`);
		const images = e2e.output(upload, 'Create Omni Image');
		expect(images).toHaveLength(3);
		expect(e2e.receiver.uploads).toHaveLength(3);
		for (const received of e2e.receiver.uploads) {
			const image = images.find((i) => i.binary!.data.fileName === received.files[0].fileName)!;
			expect(received.files[0].bytes.equals(e2e.sim.expectedImageBytes(image.json.image.url))).toBe(true);
		}
	});

	test('the API key is absent from what n8n stored', () => {
		expect(e2e.filesContaining(e2e.apiKey)).toEqual([]);
		for (const output of e2e.commandOutput) expect(output).not.toContain(e2e.apiKey);
	});
});
