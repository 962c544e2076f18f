/** Waiting in tests: a plain pause, and polling until something observable is true. */

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface UntilOptions {
	/** Pause between two checks. */
	everyMs?: number;
	/** More to say when it times out (a server's output, say), read only then. */
	explain?: () => string;
}

/**
 * Polls `check` until it returns something truthy and returns that. On timeout the error names what was
 * awaited, the last value seen and, when given, `explain()`.
 */
export async function until<T>(
	what: string,
	check: () => T | Promise<T>,
	timeoutMs = 20_000,
	{ everyMs = 200, explain }: UntilOptions = {},
): Promise<NonNullable<T>> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const last = await check();
		if (last) return last as NonNullable<T>;
		if (Date.now() > deadline) {
			const more = explain ? `\n${explain()}` : '';
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})${more}`);
		}
		await sleep(everyMs);
	}
}
