/*
 * End-to-end harness: one real n8n user folder with the packed package installed as a community package,
 * a CometAPI simulator, a loopback upload endpoint, the credential and the example workflows imported.
 * Workflows run headlessly with `n8n execute`; the helpers read what n8n produced (items, binary data in
 * n8n's filesystem store, files on disk, the database).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startSimulator } from '../../simulator';
import type { Simulator, SimulatorOptions } from '../../simulator';
import { startUploadReceiver, type UploadReceiver } from '../support/uploads';

/* eslint-disable @typescript-eslint/no-require-imports */
const host = require('../../scripts/lib/n8n-host');
const n8nInstance = require('../../scripts/lib/n8n-instance');
const examples = require('../../scripts/lib/examples');
/* eslint-enable @typescript-eslint/no-require-imports */

export const KLING_NODE_TYPE: string = examples.KLING_NODE_TYPE;
export const EXAMPLES: Record<'diskFiles' | 'scheduledBatch' | 'upload', { id: string; file: string }> = examples.EXAMPLES;
export const PACKAGE_NAME: string = host.PACKAGE_NAME;

export interface E2EState {
	workDir: string;
	tarball: string;
	versions: string[];
}

export function e2eState(): E2EState {
	const file = process.env.KLING_E2E_STATE;
	if (!file) throw new Error('KLING_E2E_STATE is not set: run the e2e tests with `npm run test:e2e`');
	return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export interface BinaryRef {
	mimeType: string;
	fileName?: string;
	fileExtension?: string;
	fileType?: string;
	/** `filesystem-v2:<path>` (or another mode's id) when not stored inline. */
	id?: string;
	/** Base64 when inline; the mode name when stored elsewhere. */
	data?: string;
	bytes?: number;
	fileSize?: string;
}

export interface Item {
	json: Record<string, any>;
	binary?: Record<string, BinaryRef>;
	pairedItem?: { item: number; input?: number } | Array<{ item: number; input?: number }>;
}

export interface ExecResult {
	ok: boolean;
	code: number;
	signal: string | null;
	run: any;
	error: any;
	stdout: string;
	stderr: string;
	durationMs: number;
}

export interface InstanceOptions {
	/** n8n version; default: the first one global setup installed. */
	version?: string;
	/** Extra simulator options (the API key is set here). */
	simulator?: SimulatorOptions;
	/** Poll interval of the imported examples, in seconds. */
	pollInterval?: number;
}

/** A task plan that fails tasks whose prompt contains FAIL_MARKER. */
export const FAIL_MARKER = 'PLEASE-FAIL';
export const FAIL_REASON = 'The prompt was rejected by the content filter (simulated)';

export class E2EInstance {
	/** Every n8n command's stdout and stderr, for the secret scan. */
	readonly commandOutput: string[] = [];

	private constructor(
		readonly n8n: any,
		readonly instance: any,
		readonly sim: Simulator,
		readonly receiver: UploadReceiver,
		readonly outputFolder: string,
		readonly apiKey: string,
	) {}

	static async create(name: string, options: InstanceOptions = {}): Promise<E2EInstance> {
		const state = e2eState();
		host.setQuiet(true);
		const n8n = await host.ensureN8n(options.version ?? state.versions[0]);
		const userFolder = fs.mkdtempSync(path.join(state.workDir, `${name}-`));
		const instance = new n8nInstance.N8nInstance(n8n, { userFolder });
		await instance.installPackage(state.tarball);
		const receiver: UploadReceiver = await startUploadReceiver();
		const outputFolder = path.join(instance.filesDir, 'kling-images');
		fs.mkdirSync(path.join(outputFolder, 'batch'), { recursive: true });
		const apiKey = `sk-e2e-${crypto.randomBytes(16).toString('hex')}`;
		const sim = await startSimulator({
			taskDurationMs: 1500,
			taskPlan: (body) =>
				typeof body?.prompt === 'string' && body.prompt.includes(FAIL_MARKER)
					? { outcome: 'failed', failReason: FAIL_REASON }
					: undefined,
			...options.simulator,
			apiKey,
		});
		const self = new E2EInstance(n8n, instance, sim, receiver, outputFolder, apiKey);
		try {
			await instance.importCredentials([examples.credentialEntry({ apiKey, baseUrl: sim.apiUrl })]);
			await self.importWorkflows(
				examples.configuredExamples({ outputFolder, uploadUrl: receiver.url, pollInterval: options.pollInterval ?? 1 }),
			);
		} catch (error) {
			await self.close();
			throw error;
		}
		return self;
	}

	get userFolder(): string {
		return this.instance.userFolder;
	}

	get n8nFolder(): string {
		return this.instance.n8nFolder;
	}

	/** An example as it was imported here (settings pointed at this instance). */
	example(key: keyof typeof EXAMPLES): any {
		return examples.configureWorkflow(examples.loadExample(key), {
			settings:
				key === 'upload'
					? { upload_url: this.receiver.url }
					: { output_folder: key === 'diskFiles' ? this.outputFolder : path.join(this.outputFolder, 'batch') },
			pollInterval: 1,
		});
	}

	/** A variant of an example under a new id: `edit` changes the copy. */
	variant(key: keyof typeof EXAMPLES, id: string, edit: (workflow: any) => void): any {
		return asVariant(this.example(key), id, edit);
	}

	async importWorkflows(workflows: any[]): Promise<void> {
		await this.instance.importWorkflows(workflows);
	}

	/**
	 * `n8n execute --id`. n8n 2.41 now and then dies with SIGSEGV while shutting down after it has printed
	 * the finished execution; that is accepted (and reported) when the printed execution is complete.
	 */
	async execute(workflowId: string): Promise<ExecResult> {
		const result: ExecResult = await this.instance.execute(workflowId);
		this.commandOutput.push(result.stdout, result.stderr);
		if (result.signal === 'SIGSEGV' && result.run?.finished !== undefined && result.run?.status) {
			process.stderr.write(`note: n8n crashed (SIGSEGV) while exiting after execution of ${workflowId} finished\n`);
			result.ok = !result.error && result.run.status === 'success';
		}
		return result;
	}

	/** Items a node output in a run. */
	output(result: ExecResult, nodeName: string, outputIndex = 0): Item[] {
		return n8nInstance.nodeOutput(result.run, nodeName, { output: outputIndex });
	}

	/** A node's task data in a run (executionStatus, error, ...). */
	task(result: ExecResult, nodeName: string): any {
		return n8nInstance.nodeTask(result.run, nodeName);
	}

	/** Where n8n's filesystem binary-data mode keeps a binary (throws for inline data). */
	binaryPath(ref: BinaryRef): string {
		if (!ref.id) throw new Error(`binary ${ref.fileName} is stored inline, not in the filesystem`);
		const match = /^filesystem(?:-v2)?:(.+)$/.exec(ref.id);
		if (!match) throw new Error(`unexpected binary data id ${ref.id}`);
		// n8n 2.x keeps it under .n8n/storage, 1.x under .n8n/binaryData.
		const candidates = ['storage', 'binaryData'].map((dir) => path.join(this.n8nFolder, dir, match[1]));
		const found = candidates.find((file) => fs.existsSync(file));
		if (!found) throw new Error(`binary ${ref.id} is not in ${candidates.join(' or ')}`);
		return found;
	}

	/** The bytes n8n holds for a binary. */
	binaryBytes(ref: BinaryRef): Buffer {
		if (ref.id) return fs.readFileSync(this.binaryPath(ref));
		return Buffer.from(ref.data ?? '', 'base64');
	}

	/** Rows of n8n's database, read with the sqlite3 module n8n itself uses (on n8n's Node). */
	async query(sql: string): Promise<any[]> {
		const script = `
			const sqlite3 = require('sqlite3');
			const db = new sqlite3.Database(process.argv[1], sqlite3.OPEN_READONLY);
			db.all(process.argv[2], (error, rows) => {
				if (error) { console.error(error.message); process.exit(1); }
				process.stdout.write(JSON.stringify(rows));
				db.close();
			});`;
		const { stdout } = await host.run(
			this.n8n.node.nodeBin,
			['-e', script, path.join(this.n8nFolder, 'database.sqlite'), sql],
			{ cwd: path.join(this.n8n.dir, 'node_modules', 'n8n') },
		);
		return JSON.parse(stdout);
	}

	/** Files under the user folder whose bytes contain `needle` (also looked for in Base64). */
	filesContaining(needle: string): string[] {
		const forms = [Buffer.from(needle), Buffer.from(Buffer.from(needle).toString('base64').replace(/=+$/, ''))];
		const hits: string[] = [];
		const walk = (dir: string) => {
			for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
				const full = path.join(dir, entry.name);
				if (entry.isDirectory()) walk(full);
				else if (entry.isFile()) {
					const bytes = fs.readFileSync(full);
					if (forms.some((form) => bytes.includes(form))) hits.push(full);
				}
			}
		};
		walk(this.userFolder);
		return hits;
	}

	async close(): Promise<void> {
		await Promise.allSettled([this.sim.close(), this.receiver.close()]);
	}
}

/** The index a paired item points at. */
export function pairedIndex(item: Item): number | undefined {
	const paired = Array.isArray(item.pairedItem) ? item.pairedItem[0] : item.pairedItem;
	return paired?.item;
}

/** A short description of a failed run, for assertion messages. */
export function describeRun(result: ExecResult): string {
	const error = result.error ? JSON.stringify(result.error).slice(0, 2000) : '';
	return `exit ${result.code ?? result.signal}; error: ${error}\nstdout tail: ${result.stdout.slice(-2000)}\nstderr tail: ${result.stderr.slice(-2000)}`;
}

/** A fresh workflow turned into a variant: a new id (its name says which), then `edit`. */
export function asVariant(workflow: any, id: string, edit: (workflow: any) => void): any {
	workflow.id = id;
	workflow.name = `${workflow.name} (${id})`;
	edit(workflow);
	return workflow;
}

/** Fails the test with the run's exit, error and output tails unless the execution succeeded. */
export function expectSuccess(result: ExecResult): void {
	if (!result.ok) throw new Error(`execution failed: ${describeRun(result)}`);
}

/** Removes nodes from a workflow together with the connections from and to them. */
export function removeNodes(workflow: any, names: string[]): void {
	workflow.nodes = workflow.nodes.filter((n: { name: string }) => !names.includes(n.name));
	for (const name of names) delete workflow.connections[name];
	for (const outputs of Object.values<any>(workflow.connections)) {
		for (const [type, lists] of Object.entries<any>(outputs)) {
			outputs[type] = lists.map((list: Array<{ node: string }>) => list.filter((c) => !names.includes(c.node)));
		}
	}
}

/** A node of a workflow by name (throws when missing, so a renamed node is noticed). */
export function nodeNamed(workflow: any, name: string): any {
	const node = workflow.nodes.find((n: { name: string }) => n.name === name);
	if (!node) throw new Error(`workflow "${workflow.name}" has no node "${name}"`);
	return node;
}

/** The value of a field of an Edit Fields (Set) node. */
export function setField(workflow: any, nodeName: string, field: string): { value: any } {
	const assignment = nodeNamed(workflow, nodeName).parameters.assignments.assignments.find(
		(a: { name: string }) => a.name === field,
	);
	if (!assignment) throw new Error(`node "${nodeName}" has no field "${field}"`);
	return assignment;
}
