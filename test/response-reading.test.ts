/** Reading what comes back, without HTTP or n8n: the API answer's envelope, the task it carries (normalised), and facts of the image bytes. */
import { parseEnvelope, readAnswer } from '../nodes/shared/api/envelope';
import { extensionForMimeType, imageDimensions, sniffImageFormat } from '../nodes/shared/images/imageInfo';
import { normalizeTask } from '../nodes/shared/task/task';
import { createReferenceJpeg, createReferencePng } from '../simulator';

const answer = (statusCode: number, body: unknown, headers: Record<string, unknown> = {}) =>
	readAnswer({ statusCode, headers, body });

describe('reading an API answer', () => {
	it('takes data from an accepted envelope, code as number or text', () => {
		expect(answer(200, { code: 0, message: 'SUCCEED', data: { task_id: 'T' } })).toEqual({ type: 'ok', data: { task_id: 'T' } });
		expect(answer(200, JSON.stringify({ code: '0', data: { task_id: 'T' } }))).toEqual({ type: 'ok', data: { task_id: 'T' } });
		expect(answer(200, Buffer.from('{"code":0,"data":{"a":1}}'))).toEqual({ type: 'ok', data: { a: 1 } });
	});

	it('treats HTTP 200 with a non-zero code as an error with message, code and request id', () => {
		const read = answer(200, { code: 1301, message: 'Trigger the content security policy', request_id: 'r-1' });
		expect(read).toMatchObject({ type: 'error', transient: false });
		expect(read.type !== 'ok' && read.error.summary).toBe('Trigger the content security policy (HTTP 200, code 1301, request ID r-1)');
	});

	it('tells rate limits from account errors sent as 429', () => {
		expect(answer(429, { code: 1302, message: 'rate limited' }, { 'retry-after': '3' })).toMatchObject({ type: 'rateLimited', retryAfterMs: 3000 });
		const arrears = answer(429, { code: 1101, message: 'Account in arrears' });
		expect(arrears).toMatchObject({ type: 'error', transient: false });
		expect(arrears.type !== 'ok' && arrears.error.account).toBe(true);
	});

	it('marks 5xx and unreadable or data-less answers as transient', () => {
		expect(answer(503, { code: 503, message: 'busy' })).toMatchObject({ type: 'error', transient: true });
		expect(answer(200, '<html>')).toMatchObject({ type: 'error', transient: true });
		expect(answer(200, { code: 0, data: null })).toMatchObject({ type: 'error', transient: true });
		expect(answer(400, 'not json')).toMatchObject({ type: 'error', transient: false });
	});

	it('parses only JSON objects as envelopes', () => {
		expect(parseEnvelope('[1]')).toBeUndefined();
		expect(parseEnvelope('nope')).toBeUndefined();
		expect(parseEnvelope({ code: 0 })).toEqual({ code: 0 });
	});
});

describe('normalising a task', () => {
	it('flattens the API task with ISO times, cost and images', () => {
		const task = normalizeTask({
			task_id: 874512093471236096n.toString(),
			task_status: 'succeed',
			task_info: { external_task_id: 'ext-1' },
			created_at: 1764063050989,
			updated_at: '1764063072402',
			final_unit_deduction: 1,
			task_result: { result_type: 'single', images: [{ index: 0, url: 'https://x/0.png' }, { url: 'https://x/1.png' }] },
		});
		expect(task).toEqual({
			task_id: '874512093471236096',
			status: 'succeed',
			status_message: null,
			external_task_id: 'ext-1',
			result_type: 'single',
			images: [
				{ index: 0, url: 'https://x/0.png', watermark_url: null },
				{ index: 1, url: 'https://x/1.png', watermark_url: null },
			],
			cost: '1',
			created_at: '2025-11-25T09:30:50.989Z',
			updated_at: '2025-11-25T09:31:12.402Z',
		});
	});

	it('falls back to the asked task id and an unknown status', () => {
		expect(normalizeTask({}, 'T9')).toMatchObject({ task_id: 'T9', status: 'unknown', images: [] });
	});
});

describe('image facts', () => {
	it('sniffs formats from bytes and reads PNG and JPEG sizes', () => {
		const png = createReferencePng(320, 400);
		const jpeg = createReferenceJpeg(640, 300);
		expect(sniffImageFormat(png)).toBe('png');
		expect(sniffImageFormat(jpeg)).toBe('jpeg');
		expect(sniffImageFormat(Buffer.from('GIF89a......'))).toBe('gif');
		expect(sniffImageFormat(Buffer.from('<svg xmlns=...>'))).toBeUndefined();
		expect(imageDimensions(png, 'png')).toEqual({ width: 320, height: 400 });
		expect(imageDimensions(jpeg, 'jpeg')).toEqual({ width: 640, height: 300 });
		expect(extensionForMimeType('image/jpeg')).toBe('jpg');
	});
});
