import * as workflow from 'n8n-workflow';

type AbortableSleep = (ms: number, signal?: AbortSignal) => Promise<void>;

// The package runs on the host n8n's n8n-workflow: 2.x exports sleep(ms, signal) that aborts on the
// signal, 1.x exports sleep(ms) (not abortable) plus sleepWithAbort(ms, signal).
const exported = workflow as unknown as { sleep: AbortableSleep; sleepWithAbort?: AbortableSleep };
const abortableSleep: AbortableSleep = exported.sleepWithAbort ?? exported.sleep;

/** Waits without using CPU; rejects as soon as `signal` aborts (the workflow was stopped). */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
	if (ms <= 0) return;
	if (signal) await abortableSleep(ms, signal);
	else await exported.sleep(ms);
}
