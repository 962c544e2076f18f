import { pause } from './pause';

/**
 * One pause shared by every request of an execution: a 429 for one item holds back all items, so a
 * batch slows down together instead of each item hammering the API on its own schedule.
 */
export class BackoffGate {
	private resumeAt = 0;

	/** `maxPauseMs` bounds any one pause (the retry time budget). */
	constructor(private readonly maxPauseMs: number) {}

	pauseFor(ms: number): void {
		this.resumeAt = Math.max(this.resumeAt, Date.now() + Math.min(ms, this.maxPauseMs));
	}

	async whenOpen(signal?: AbortSignal): Promise<void> {
		let wait = this.resumeAt - Date.now();
		while (wait > 0) {
			await pause(wait, signal);
			wait = this.resumeAt - Date.now();
		}
	}
}
