'use strict';
// The CometAPI simulator in its own process, so its memory and CPU never count as the node's.
// Like `node simulator/cli.js`, plus an IPC channel the benchmark uses to reset the simulator and
// to read statistics from its request log. Started by bench/run.ts with child_process.fork:
//   argv[2] = JSON simulator options (taskDurationMs, imageSizeBytes, ...)
//   -> {type: 'listening', apiUrl, apiKey}
//   <- {id, cmd: 'reset' | 'stats'} -> {id, result}

const path = require('node:path');
const { startSimulator } = require(path.join(__dirname, '..', 'simulator'));

/** What the request log says about one run: how many requests of each kind, and whether any was needless. */
function stats(sim) {
	const tasks = [...sim.tasks.values()];
	const creates = sim.apiRequests('create');
	const queries = sim.apiRequests('query');
	const other = sim.apiRequests('other');
	const imageRequests = sim.imageRequests();
	const pollsByTask = new Map(tasks.map((task) => [task.id, 0]));
	const queriesAfterDone = new Map(tasks.map((task) => [task.id, 0]));
	for (const query of queries) {
		const task = sim.tasks.get(query.taskId);
		if (!task) continue;
		pollsByTask.set(task.id, pollsByTask.get(task.id) + 1);
		// A query that arrived once the task was terminal: the first one is the answer, more are waste.
		if (query.at >= task.createdAt + task.durationMs) queriesAfterDone.set(task.id, queriesAfterDone.get(task.id) + 1);
	}
	const polls = [...pollsByTask.values()];
	const imagesPerKey = new Map();
	for (const request of imageRequests) {
		const key = `${request.taskId}/${request.index}/${request.kind}`;
		imagesPerKey.set(key, (imagesPerKey.get(key) ?? 0) + 1);
	}
	const firstCreateAt = Math.min(...creates.map((request) => request.at));
	const lastCreateAt = Math.max(...creates.map((request) => request.at));
	const firstQueryAt = Math.min(...queries.map((request) => request.at));
	// Phases of the run, in ms from the first create: creates, each round of queries, downloads.
	const span = (requests) =>
		requests.length ? [Math.min(...requests.map((r) => r.at)) - firstCreateAt, Math.max(...requests.map((r) => r.at)) - firstCreateAt] : undefined;
	const rounds = [];
	for (const query of [...queries].sort((a, b) => a.at - b.at)) {
		const round = rounds[rounds.length - 1];
		if (round && query.at - round[round.length - 1].at < 300) round.push(query);
		else rounds.push([query]);
	}
	const timeline = {
		creates: span(creates),
		queryRounds: rounds.map((round) => [...span(round), round.length]),
		downloads: span(imageRequests),
		lastTaskDone: tasks.length ? Math.max(...tasks.map((task) => task.createdAt + task.durationMs)) - firstCreateAt : 0,
	};
	return {
		timeline,
		tasks: tasks.length,
		images: tasks.reduce((sum, task) => sum + task.imageCount, 0),
		creates: creates.length,
		createsThatCreated: creates.filter((request) => request.afterCreate).length,
		queries: queries.length,
		otherApiRequests: other.length,
		imageRequests: imageRequests.length,
		maxRequestsPerImage: Math.max(0, ...imagesPerKey.values()),
		pollsMax: Math.max(0, ...polls),
		pollsMin: Math.min(...polls),
		maxQueriesAfterDone: Math.max(0, ...queriesAfterDone.values()),
		allCreatedBeforeFirstPoll: queries.length === 0 || firstQueryAt >= lastCreateAt,
		// What the API itself needed: from the first create to the last task's end.
		apiSpanMs: tasks.length ? Math.max(...tasks.map((task) => task.createdAt + task.durationMs)) - firstCreateAt : 0,
		statusCodes: [...new Set(sim.requests.map((request) => request.status))],
		// Over the account's parallel-task limit (1303): refused creates, and prompts created more than once.
		rejectedCreates: creates.filter((request) => request.rejectedForLimit).length,
		duplicatePrompts: duplicates(tasks.map((task) => task.body.prompt)),
		maxSlotsInUse: sim.stats().maxSlotsInUse,
	};
}

function duplicates(values) {
	return values.length - new Set(values).size;
}

async function main() {
	const options = JSON.parse(process.argv[2] ?? '{}');
	// The workers' warm-up task (prompt "warm-up") is done at once and small, whatever the run uses.
	const taskPlan = (body) => (body.prompt === 'warm-up' ? { durationMs: 0, imageSizeBytes: 0 } : undefined);
	const sim = await startSimulator({ ...options, taskPlan });
	process.on('message', (message) => {
		let result;
		if (message.cmd === 'reset') sim.reset();
		if (message.cmd === 'stats') result = stats(sim);
		process.send({ id: message.id, result });
	});
	process.on('disconnect', () => sim.close().then(() => process.exit(0)));
	process.send({ type: 'listening', apiUrl: sim.apiUrl, apiKey: sim.apiKey });
}

main().catch((error) => {
	process.stderr.write(`simulator failed to start: ${error.message}\n`);
	process.exit(1);
});
