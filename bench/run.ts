/**
 * `npm run bench`: the node's batch path against a sequential HTTP Request → Wait → IF loop, on the
 * loopback simulator with a fixed task duration. See bench/README.md.
 *
 * Every measurement runs in a fresh worker process, with its own simulator in another process, so
 * that wall time, CPU time and peak RSS belong to that measurement alone.
 *   npm run bench              all figures, the baseline measured in full (about 8 minutes)
 *   npm run bench -- --quick   baseline measured up to N = 50, N = 200 extrapolated (labelled so)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';

import type { WorkerJob, WorkerResult } from './worker';

const T_MS = 2_000;
const POLL_INTERVAL_MS = 1_000;
const SIZES = [1, 10, 50, 200];
const QUICK_BASELINE_MAX_N = 50;
const BIG_IMAGE_BYTES = 20_000_000;
const BIG_IMAGE_COUNT = 9;
/** A second, smaller size: the same growth for both shows memory does not follow image size. */
const SMALLER_IMAGE_BYTES = 5_000_000;
const MB = 1_000_000;
/** Runs of node and floor at N = 200 for the overhead figure (median; CPU time on a shared machine is noisy). */
const OVERHEAD_RUNS = 5;
const OVERHEAD_N = 200;

/** The batch over the account's parallel-task limit: N prompts, a limit of LIMIT_SLOTS slots. */
const LIMIT_N = 200;
const LIMIT_SLOTS = 5;
/** Target: wall time at most this multiple of the ideal ceil(N / slots) × T. */
const LIMIT_WALL_FACTOR = 1.25;

const quick = process.argv.includes('--quick');
/** Only the parallel-limit row (about 2 minutes). */
const limitOnly = process.argv.includes('--limit-only');
/** Only the callback row (about a minute). */
const callbackOnly = process.argv.includes('--callback-only');
/** The callback path: N prompts created without waiting, each delivered by the trigger. */
const CALLBACK_N = 200;

// ---------------------------------------------------------------------------
// Child processes

interface SimStats {
	/** ms from the first create: [first, last] arrival of creates, of each query round (+ its size), of downloads. */
	timeline: {
		creates: [number, number];
		queryRounds: Array<[number, number, number]>;
		downloads?: [number, number];
		lastTaskDone: number;
	};
	tasks: number;
	images: number;
	creates: number;
	createsThatCreated: number;
	queries: number;
	otherApiRequests: number;
	imageRequests: number;
	maxRequestsPerImage: number;
	pollsMax: number;
	pollsMin: number;
	maxQueriesAfterDone: number;
	allCreatedBeforeFirstPoll: boolean;
	apiSpanMs: number;
	statusCodes: number[];
	rejectedCreates: number;
	duplicatePrompts: number;
	maxSlotsInUse: number;
}

interface SimOptions {
	taskDurationMs: number;
	imageSizeBytes?: number;
	/** The account's parallel-task limit, in slots. */
	parallelSlots?: number;
}

/** The simulator in its own process (bench/sim-child.js), reset and read over IPC. */
class SimProcess {
	private nextId = 0;

	private readonly waiting = new Map<number, (result: unknown) => void>();

	private constructor(
		private readonly child: ChildProcess,
		readonly apiUrl: string,
		readonly apiKey: string,
	) {
		child.on('message', (message: { id?: number; result?: unknown }) => {
			if (message.id === undefined) return;
			this.waiting.get(message.id)?.(message.result);
			this.waiting.delete(message.id);
		});
	}

	static async start(options: SimOptions): Promise<SimProcess> {
		const child = fork(join(__dirname, '..', '..', '..', 'bench', 'sim-child.js'), [JSON.stringify(options)], {
			stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
		});
		return await new Promise<SimProcess>((resolve, reject) => {
			child.once('message', (message: { type: string; apiUrl: string; apiKey: string }) =>
				resolve(new SimProcess(child, message.apiUrl, message.apiKey)),
			);
			child.once('exit', (code) => reject(new Error(`the simulator exited with code ${code}`)));
		});
	}

	async call<T>(cmd: 'reset' | 'stats'): Promise<T> {
		const id = ++this.nextId;
		return await new Promise<T>((resolve) => {
			this.waiting.set(id, resolve as (result: unknown) => void);
			this.child.send({ id, cmd });
		});
	}

	stop(): void {
		this.child.removeAllListeners('exit');
		this.child.kill();
	}
}

interface Measurement {
	job: WorkerJob;
	result: WorkerResult;
	stats: SimStats;
	/** Warnings the measured process printed (e.g. Node's MaxListenersExceededWarning). */
	warnings: string[];
}

async function measure(kind: WorkerJob['kind'], n: number, sim: SimOptions, job: Partial<WorkerJob> = {}): Promise<Measurement> {
	const simulator = await SimProcess.start(sim);
	const worker = fork(join(__dirname, 'worker.js'), [], {
		execArgv: ['--expose-gc'],
		stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
	});
	let stderr = '';
	worker.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
	try {
		const fullJob: WorkerJob = {
			kind,
			n,
			apiUrl: simulator.apiUrl,
			apiKey: simulator.apiKey,
			pollIntervalMs: POLL_INTERVAL_MS,
			taskDurationMs: sim.taskDurationMs,
			imagesPerTask: 1,
			resolution: '1k',
			binaryMode: 'filesystem',
			sampleRss: false,
			...job,
		};
		const result = await new Promise<WorkerResult>((resolve, reject) => {
			worker.on('message', (message: { type: string; result?: WorkerResult }) => {
				if (message.type === 'warmedUp') {
					// The warm-up's requests are not part of the measurement.
					void simulator.call('reset').then(() => worker.send({ type: 'go' }));
				}
				if (message.type === 'result') resolve(message.result!);
			});
			worker.once('exit', (code) => reject(new Error(`the ${kind} worker (N = ${n}) exited with code ${code}:\n${stderr}`)));
			worker.send({ type: 'start', job: fullJob });
		});
		const stats = await simulator.call<SimStats>('stats');
		const warnings = [...new Set(stderr.split('\n').filter((line) => /Warning/.test(line)))];
		return { job: fullJob, result, stats, warnings };
	} finally {
		worker.removeAllListeners('exit');
		worker.kill();
		simulator.stop();
	}
}

// ---------------------------------------------------------------------------
// Formatting

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const megabytes = (bytes: number) => `${(bytes / MB).toFixed(0)} MB`;
const rss = (m: Measurement) =>
	`${megabytes(m.result.peakRssBytes)} (+${megabytes(m.result.peakRssBytes - m.result.rssBeforeBytes)})`;
const requestsPerTask = (m: Measurement) => ((m.stats.creates + m.stats.queries) / m.job.n).toFixed(2);

function table(header: string[], rows: string[][]): string {
	const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
	const line = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
	return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function log(text = ''): void {
	process.stdout.write(`${text}\n`);
}

function progress(text: string): void {
	process.stderr.write(`${text}\n`);
}

/** Anything in a run that says a request was sent without a reason, or the output was wrong. */
function runProblems(m: Measurement): string[] {
	const { stats, result, job } = m;
	const problems: string[] = [];
	if (result.problem) problems.push(result.problem);
	if (stats.tasks !== job.n) problems.push(`${stats.tasks} tasks for ${job.n} items`);
	if (stats.creates !== stats.tasks) problems.push(`${stats.creates - stats.tasks} create requests repeated`);
	if (stats.maxQueriesAfterDone > 1) problems.push('a task was polled again after it was done');
	if (stats.maxRequestsPerImage > 1) problems.push('an image was downloaded more than once');
	if (stats.imageRequests !== stats.images) problems.push(`${stats.imageRequests} downloads for ${stats.images} images`);
	if (stats.otherApiRequests > 0) problems.push(`${stats.otherApiRequests} unexpected API requests`);
	if (stats.statusCodes.some((status) => status !== 200)) problems.push(`HTTP statuses ${stats.statusCodes.join(', ')}`);
	return problems;
}

// ---------------------------------------------------------------------------
// The batch over the account's parallel-task limit

async function limitSection(): Promise<Array<[string, boolean, string]>> {
	progress(`node, N = ${LIMIT_N} on an account with ${LIMIT_SLOTS} parallel slots …`);
	const m = await measure('node', LIMIT_N, { taskDurationMs: T_MS, parallelSlots: LIMIT_SLOTS });
	const idealMs = Math.ceil(LIMIT_N / LIMIT_SLOTS) * T_MS;
	log(`## Batch over the account's parallel-task limit: N = ${LIMIT_N}, ${LIMIT_SLOTS} slots, T = ${T_MS / 1000} s, poll ${POLL_INTERVAL_MS / 1000} s`);
	log();
	log(
		table(
			['node wall', 'ideal ceil(N / slots) × T', 'wall / ideal', 'tasks', 'creates refused (1303)', 'prompts created twice', 'most slots in use'],
			[[
				seconds(m.result.wallMs),
				seconds(idealMs),
				`${(m.result.wallMs / idealMs).toFixed(2)}×`,
				String(m.stats.tasks),
				String(m.stats.rejectedCreates),
				String(m.stats.duplicatePrompts),
				String(m.stats.maxSlotsInUse),
			]],
		),
	);
	log();
	const problems = m.result.problem ? [m.result.problem] : [];
	return [
		[`limit: wall ≤ ${LIMIT_WALL_FACTOR} × ideal = ${seconds(idealMs * LIMIT_WALL_FACTOR)}`, m.result.wallMs <= idealMs * LIMIT_WALL_FACTOR, seconds(m.result.wallMs)],
		[`limit: creates refused ≤ N = ${LIMIT_N}`, m.stats.rejectedCreates <= LIMIT_N, String(m.stats.rejectedCreates)],
		['limit: every prompt created exactly once, output complete', m.stats.duplicatePrompts === 0 && m.stats.tasks === LIMIT_N && problems.length === 0, problems.join('; ') || `${m.stats.tasks} tasks, ${m.stats.duplicatePrompts} twice`],
	];
}

// ---------------------------------------------------------------------------
// The callback path (bench/callback.ts, in its own process)

async function callbackSection(): Promise<Array<[string, boolean, string]>> {
	progress(`callback path, N = ${CALLBACK_N} …`);
	const child = fork(join(__dirname, 'callback.js'), [String(CALLBACK_N), String(T_MS)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
	let output = '';
	child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
	const code = await new Promise<number>((resolve) => child.once('exit', (exitCode) => resolve(exitCode ?? 1)));
	log(`## Callback path: N = ${CALLBACK_N} created without waiting, the trigger receives each task (T = ${T_MS / 1000} s)`);
	log();
	log(output.trim());
	log();
	return [[`callback: last image ≤ T + 2 s after the first create, 1 query per task`, code === 0, code === 0 ? 'met' : 'see the row above']];
}

async function main(): Promise<void> {
	const started = Date.now();
	const baselineSizes = quick ? SIZES.filter((n) => n <= QUICK_BASELINE_MAX_N) : SIZES;
	const baselineEstimateS = baselineSizes.reduce((max, n) => Math.max(max, (n * (T_MS + 50)) / 1000), 0);
	log('# Kling Omni Image node: batch benchmark');
	log();
	log(`Task duration T = ${T_MS / 1000} s, poll interval ${POLL_INTERVAL_MS / 1000} s, Max Concurrent Requests at its default (10).`);
	log(
		`Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ` +
			`load average ${loadavg()[0].toFixed(2)} at the start (other work on the machine makes the figures noisier).`,
	);
	log('Each figure comes from a fresh process; the simulator runs in a separate process.');
	log();
	if (limitOnly || callbackOnly) {
		const targets = limitOnly ? await limitSection() : await callbackSection();
		log(table(['target', 'held', 'measured'], targets.map(([name, ok, value]) => [name, ok ? 'yes' : 'NO', value])));
		if (targets.some(([, ok]) => !ok)) process.exitCode = 1;
		return;
	}

	// 1. The node, one N at a time, nothing else running.
	const node = new Map<number, Measurement>();
	for (const n of SIZES) {
		progress(`node, N = ${n} …`);
		node.set(n, await measure('node', n, { taskDurationMs: T_MS }));
	}

	// 2. Large images in filesystem binary-data mode (and in default mode, for comparison).
	progress(`${BIG_IMAGE_COUNT} images of ${BIG_IMAGE_BYTES / MB} MB, filesystem mode …`);
	const bigJob = { imagesPerTask: BIG_IMAGE_COUNT, resolution: '4k' as const, sampleRss: true };
	const bigSim = { taskDurationMs: T_MS, imageSizeBytes: BIG_IMAGE_BYTES };
	const bigFs = await measure('node', 1, bigSim, { ...bigJob, binaryMode: 'filesystem' });
	progress(`${BIG_IMAGE_COUNT} images of ${SMALLER_IMAGE_BYTES / MB} MB, filesystem mode …`);
	const smallerFs = await measure('node', 1, { ...bigSim, imageSizeBytes: SMALLER_IMAGE_BYTES }, { ...bigJob, binaryMode: 'filesystem' });
	progress(`${BIG_IMAGE_COUNT} images of ${BIG_IMAGE_BYTES / MB} MB, default mode (comparison) …`);
	const bigDefault = await measure('node', 1, bigSim, { ...bigJob, binaryMode: 'default' });

	// 3. Overhead at N = 200: the node against a bare inline node making the same requests through the
	// same n8n helpers (the "floor"), alternating, median of several runs.
	const overheadNode: Measurement[] = [node.get(OVERHEAD_N)!];
	const overheadFloor: Measurement[] = [];
	for (let run = 0; run < OVERHEAD_RUNS; run++) {
		progress(`overhead at N = ${OVERHEAD_N}, run ${run + 1} of ${OVERHEAD_RUNS} …`);
		overheadFloor.push(await measure('floor', OVERHEAD_N, { taskDurationMs: T_MS }));
		if (overheadNode.length < OVERHEAD_RUNS) overheadNode.push(await measure('node', OVERHEAD_N, { taskDurationMs: T_MS }));
	}

	// 4. The sequential baseline. Each N is its own sequential loop in its own process, with its own
	// simulator; the loops run side by side (they sleep nearly all the time) so the bench takes as
	// long as the longest one instead of their sum.
	progress(`sequential baseline, N = ${baselineSizes.join(', ')} side by side (about ${Math.ceil(baselineEstimateS)} s) …`);
	const ticker = setInterval(() => progress(`  … ${Math.round((Date.now() - started) / 1000)} s`), 30_000);
	const baseline = new Map<number, Measurement>();
	try {
		const runs = await Promise.all(baselineSizes.map(async (n) => await measure('baseline', n, { taskDurationMs: T_MS })));
		runs.forEach((m) => baseline.set(m.job.n, m));
	} finally {
		clearInterval(ticker);
	}

	// ---- Table
	const perItemBaseline = baseline.get(Math.max(...baseline.keys()))!;
	const estimateBaseline = (n: number) => (perItemBaseline.result.wallMs / perItemBaseline.job.n) * n;
	const rows = SIZES.map((n) => {
		const mNode = node.get(n)!;
		const mBase = baseline.get(n);
		const baseWall = mBase ? mBase.result.wallMs : estimateBaseline(n);
		return [
			String(n),
			seconds(mNode.result.wallMs),
			mBase ? seconds(baseWall) : `~${seconds(baseWall)} (extrapolated)`,
			`${(baseWall / mNode.result.wallMs).toFixed(1)}×`,
			requestsPerTask(mNode),
			mBase ? requestsPerTask(mBase) : 'n/a',
			String(mNode.stats.pollsMax),
			rss(mNode),
			mBase ? rss(mBase) : 'n/a',
			`${(mNode.result.cpuMs / n).toFixed(2)} ms`,
			`${((mNode.result.cpuMs / mNode.result.wallMs) * 100).toFixed(1)} %`,
			mBase ? `${(mBase.result.cpuMs / n).toFixed(2)} ms` : 'n/a',
		];
	});
	log('## Batch: node vs sequential HTTP Request → Wait loop');
	log();
	log(
		table(
			['N', 'node wall', 'baseline wall', 'ratio', 'API req/task node', 'API req/task baseline', 'polls/task max', 'peak RSS node (growth)', 'peak RSS baseline (growth)', 'node CPU/item', 'node CPU/wall', 'baseline CPU/item'],
			rows,
		),
	);
	log();
	log('- API req/task: create + status queries per task, as the simulator logged them; each image is also downloaded once.');
	log('- Peak RSS: the process\'s high-water mark (getrusage maxrss); growth is over its RSS just before the run.');
	log('  The node process carries n8n-core; the baseline process is plain Node with fetch.');
	log('- Node overhead per item = CPU time (user + system, process.cpuUsage) of the node\'s process during the run / N:');
	log('  everything the node, n8n-core and the HTTP client did; the API\'s own time runs in the simulator process.');
	log('- Node runs, in seconds from the first create (as the simulator saw the requests arrive):');
	for (const n of SIZES) {
		const m = node.get(n)!;
		const { timeline } = m.stats;
		const range = ([from, to]: number[]) => `${(from / 1000).toFixed(2)}–${(to / 1000).toFixed(2)}`;
		const rounds = timeline.queryRounds.map((round) => `${range(round)} (${round[2]})`).join(', ');
		log(
			`  N = ${n}: creates ${range(timeline.creates)}; query rounds ${rounds}; downloads ${timeline.downloads ? range(timeline.downloads) : '–'}; ` +
				`last task done at ${(timeline.lastTaskDone / 1000).toFixed(2)}; node wall − that = ${seconds(m.result.wallMs - timeline.lastTaskDone)} (${((m.result.wallMs - timeline.lastTaskDone) / n).toFixed(2)} ms per item).`,
		);
	}
	log();

	const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
	const cpuPerItem = (runs: Measurement[]) => median(runs.map((m) => m.result.cpuMs / m.job.n));
	const nodeCpu = cpuPerItem(overheadNode);
	const floorCpu = cpuPerItem(overheadFloor);
	const list = (runs: Measurement[]) => runs.map((m) => (m.result.cpuMs / m.job.n).toFixed(2)).join(', ');
	log(`## Node overhead per item at N = ${OVERHEAD_N} (CPU time of the node's process / N, median of ${OVERHEAD_RUNS} runs)`);
	log();
	log(
		table(
			['what ran', 'CPU per item (median)', 'runs'],
			[
				['the node (Create Omni Image, Wait for Completion on)', `${nodeCpu.toFixed(2)} ms`, list(overheadNode)],
				['bare inline node, same requests through the same n8n helpers', `${floorCpu.toFixed(2)} ms`, list(overheadFloor)],
				['the node\'s own logic (difference)', `${(nodeCpu - floorCpu).toFixed(2)} ms`, ''],
			],
		),
	);
	log();
	log(`- Same work per item in both: 1 create, ${Math.ceil(T_MS / POLL_INTERVAL_MS)} status queries, 1 image download streamed into filesystem binary data.`);
	log('- The bare node has no validation, retries, backoff gate, error handling or output shaping: what is left is n8n\'s own cost');
	log('  (expression evaluation, credential resolution, axios with a new connection per request, binary data files).');
	log();

	log(`## ${BIG_IMAGE_COUNT} images of ${BIG_IMAGE_BYTES / MB} MB at 4k (one task, n = ${BIG_IMAGE_COUNT}, all downloaded at once)`);
	log();
	const bigRow = (label: string, m: Measurement) => [
		label,
		`${m.job.imagesPerTask} × ${(m.result.storedBytes / m.job.imagesPerTask / MB).toFixed(0)} MB`,
		seconds(m.result.wallMs),
		megabytes(m.result.storedBytes),
		megabytes(m.result.rssBeforeBytes),
		megabytes(m.result.peakRssBytes),
		`+${megabytes(m.result.peakRssBytes - m.result.rssBeforeBytes)}`,
		`+${megabytes(Math.max(0, m.result.sampledPeakRssBytes - m.result.rssBeforeBytes))}`,
	];
	log(
		table(
			['binary data mode', 'images', 'wall', 'stored', 'RSS before', 'peak RSS', 'peak RSS growth', 'sampled growth'],
			[bigRow('filesystem', bigFs), bigRow('filesystem (smaller images)', smallerFs), bigRow('default (comparison)', bigDefault)],
		),
	);
	log();
	log('- Peak RSS growth: maxrss after the run − RSS before it (an upper bound); sampled: highest RSS seen every 5 ms − RSS before.');
	log();

	const limitTargets = await limitSection();
	const callbackTargets = await callbackSection();

	// ---- Targets
	const n50 = node.get(50)!;
	const b50 = baseline.get(50)!;
	const maxPolls = Math.ceil(T_MS / POLL_INTERVAL_MS) + 1;
	const allProblems = [...node.values(), ...overheadNode.slice(1), ...baseline.values(), bigFs, smallerFs].flatMap((m) =>
		runProblems(m).map((problem) => `${m.job.kind} N = ${m.job.n}${m.job.imagesPerTask > 1 ? ` (${m.job.imagesPerTask} images)` : ''}: ${problem}`),
	);
	const notBeforePoll = [...node.values()].filter((m) => !m.stats.allCreatedBeforeFirstPoll).map((m) => m.job.n);
	const fsGrowth = bigFs.result.peakRssBytes - bigFs.result.rssBeforeBytes;
	const overhead200 = nodeCpu;
	const targets: Array<[string, boolean, string]> = [
		[`N = 50: node wall ≤ T + 2 s = ${seconds(T_MS + 2000)}`, n50.result.wallMs <= T_MS + 2000, seconds(n50.result.wallMs)],
		['N = 50: sequential baseline ≥ 100 s', b50.result.wallMs >= 100_000, seconds(b50.result.wallMs)],
		[
			`polls per task ≤ ceil(T / interval) + 1 = ${maxPolls} (every N)`,
			[...node.values()].every((m) => m.stats.pollsMax <= maxPolls),
			`max ${Math.max(...[...node.values()].map((m) => m.stats.pollsMax))}`,
		],
		['no request repeated without a reason; output complete and in order', allProblems.length === 0, allProblems.length ? allProblems.join('; ') : 'none found'],
		['all tasks created before the first poll', notBeforePoll.length === 0, notBeforePoll.length ? `not for N = ${notBeforePoll.join(', ')}` : 'yes, every N'],
		[`${BIG_IMAGE_COUNT} × ${BIG_IMAGE_BYTES / MB} MB: peak RSS growth < 100 MB (filesystem mode)`, fsGrowth < 100 * MB, `+${megabytes(fsGrowth)}`],
		[`node overhead per item < 5 ms at N = ${OVERHEAD_N} (process CPU time / N, median)`, overhead200 < 5, `${overhead200.toFixed(2)} ms`],
		[`  … of which the node's own logic (node − bare-n8n floor) < 5 ms`, nodeCpu - floorCpu < 5, `${(nodeCpu - floorCpu).toFixed(2)} ms (floor ${floorCpu.toFixed(2)} ms)`],
		...limitTargets,
		...callbackTargets,
	];
	log('## Targets');
	log();
	log(table(['target', 'held', 'measured'], targets.map(([name, ok, value]) => [name, ok ? 'yes' : 'NO', value])));
	log();
	const warnings = [...new Set([...node.values(), ...overheadNode, bigFs, smallerFs, bigDefault].flatMap((m) => m.warnings))];
	if (warnings.length) {
		log('Warnings printed by the node\'s process:');
		for (const warning of warnings) log(`- ${warning.trim()}`);
		log();
	}
	if (quick) log(`(--quick: baseline measured up to N = ${QUICK_BASELINE_MAX_N}; larger N extrapolated from its time per item.)`);
	log(`Benchmark took ${Math.round((Date.now() - started) / 1000)} s.`);
	if (targets.some(([, ok]) => !ok)) process.exitCode = 1;
}

main().catch((error: Error) => {
	process.stderr.write(`${error.stack ?? error.message}\n`);
	process.exit(1);
});
