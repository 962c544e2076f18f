import { pause } from '../../shared/request/pause';

/** The longest single pause: Node's timers overflow past about 24.8 days, and loops re-check anyway. */
const MAX_PAUSE_MS = 60_000;

/**
 * A pause that another part of the run can cut short: the create queue sleeps until a slot may have
 * freed, the poller until its next task is due or a new task arrives. A notify() that comes while
 * nobody sleeps is kept, so the next sleep returns at once and no event is lost.
 */
export class Wakeup {
	private sleeper?: AbortController;

	private missed = false;

	notify(): void {
		if (this.sleeper) this.sleeper.abort();
		else this.missed = true;
	}

	/** Resolves after `ms`, on notify(), or when `signal` aborts (the caller checks the signal). */
	async sleep(ms: number, signal?: AbortSignal): Promise<void> {
		if (this.missed || signal?.aborted || ms <= 0) {
			this.missed = false;
			return;
		}
		const sleeper = new AbortController();
		this.sleeper = sleeper;
		try {
			await pause(Math.min(ms, MAX_PAUSE_MS), signal ? AbortSignal.any([sleeper.signal, signal]) : sleeper.signal);
		} catch {
			// woken up or stopped
		} finally {
			this.sleeper = undefined;
		}
	}
}
