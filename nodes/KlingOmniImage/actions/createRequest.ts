import type { IDataObject, IExecuteFunctions } from 'n8n-workflow';

import {
	ASPECT_RATIOS,
	defaultOf,
	IMAGE_COUNTS,
	LIMITS,
	MODELS,
	RESOLUTIONS,
	RESULT_TYPES,
	valuesOf,
	type Choice,
	type ResultType,
} from '../../shared/contract';
import { signCallbackUrl, type TokenKey } from '../../shared/callback/token';
import { itemError } from '../../shared/errors';
import { imageDimensions, sniffImageFormat } from '../../shared/images/imageInfo';

export interface CreateRequest {
	body: IDataObject;
	externalTaskId?: string;
}

/** As n8n hands them over: expressions may have resolved to any type. */
interface ReferenceImageEntry {
	source?: string;
	url?: unknown;
	binaryPropertyName?: unknown;
}

interface AdditionalFields {
	watermark?: boolean;
	callbackUrl?: unknown;
	externalTaskId?: unknown;
	generateExternalTaskId?: boolean;
}

/** Only whitespace and invisible format characters (zero-width space, joiners, BOM): nothing to pay for. */
function isBlank(text: string): boolean {
	return text.replace(/[\p{White_Space}\p{Cf}]/gu, '') === '';
}

/** Reads one item's parameters into a create body, or throws a clear error naming field and item. */
export class CreateRequestBuilder {
	constructor(
		private readonly ctx: IExecuteFunctions,
		private readonly itemIndex: number,
		/** Signs each task's Callback URL, so that the trigger accepts callbacks for this task only. */
		private readonly callbackKey: TokenKey,
	) {}

	private fail(message: string, description?: string): never {
		throw itemError(this.ctx.getNode(), message, this.itemIndex, description);
	}

	/** A parameter's value; an expression that cannot be evaluated names the field and item. */
	private parameter<T>(name: string, label: string, fallback: T): T {
		try {
			return this.ctx.getNodeParameter(name, this.itemIndex, fallback) as T;
		} catch (error) {
			return this.fail(`Could not read "${label}": ${(error as Error).message}`);
		}
	}

	/**
	 * A text field's value. Expressions can resolve to anything: numbers are fine as text, but an
	 * object or list would be sent as "[object Object]" and paid for, so it is an error.
	 */
	private text(value: unknown, label: string): string {
		if (value === undefined || value === null) return '';
		if (typeof value === 'string') return value;
		if (typeof value === 'number') return String(value);
		const kind = Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'an object' : `"${String(value)}"`;
		return this.fail(`${label} must be text, got ${kind}`);
	}

	private choice(name: string, label: string, choices: Choice[]): string {
		const allowed = valuesOf(choices);
		const value = this.text(this.parameter(name, label, defaultOf(choices)), label).trim();
		if (!allowed.includes(value)) {
			this.fail(`${label} "${value}" is not supported`, `Use one of: ${allowed.join(', ')}.`);
		}
		return value;
	}

	private integer(name: string, label: string, min: number, max: number, fallback: number): number {
		const raw = this.parameter<unknown>(name, label, fallback);
		const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
		if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
			this.fail(`${label} must be a whole number from ${min} to ${max}, got "${String(raw)}"`);
		}
		return value;
	}

	private prompt(): string {
		const prompt = this.text(this.parameter('prompt', 'Prompt', ''), 'Prompt');
		if (isBlank(prompt)) this.fail('Prompt is empty', 'Describe the image to generate.');
		const length = [...prompt].length;
		if (length > LIMITS.promptMaxChars) {
			this.fail(`Prompt is ${length} characters long; the API allows at most ${LIMITS.promptMaxChars}`);
		}
		return prompt;
	}

	private urlReference(url: unknown, position: number): string {
		const text = this.text(url, `Reference image ${position} URL`).trim();
		let parsed: URL | undefined;
		try {
			parsed = new URL(text);
		} catch {
			parsed = undefined;
		}
		if (!parsed || parsed.protocol !== 'https:') {
			this.fail(
				`Reference image ${position}: "${text}" is not a valid https URL`,
				'The API fetches reference images over https. To send a file instead, set Source to "Binary Field".',
			);
		}
		return text;
	}

	/** The binary as raw Base64 (the API rejects a `data:` prefix), after the contract's checks. */
	private async binaryReference(propertyName: unknown, position: number): Promise<string> {
		const label = `Reference image ${position}`;
		const name = this.text(propertyName, `${label} binary field`).trim();
		if (!name) this.fail(`${label}: the input binary field name is empty`);
		const binary = this.ctx.getInputData()[this.itemIndex]?.binary?.[name];
		if (!binary) {
			this.fail(
				`${label}: the input item has no binary field "${name}"`,
				'Check the field name, or the node before this one, which should output the image as binary data.',
			);
		}
		const bytes = await this.ctx.helpers.getBinaryDataBuffer(this.itemIndex, name);
		if (bytes.length > LIMITS.imageMaxBytes) {
			this.fail(`${label} ("${name}") is ${(bytes.length / 1024 / 1024).toFixed(1)} MB; the API accepts at most 10 MB`);
		}
		const format = sniffImageFormat(bytes);
		if (format !== 'png' && format !== 'jpeg') {
			this.fail(
				`${label} ("${name}") is not a JPEG or PNG image (${binary.mimeType || 'unknown type'})`,
				'The API accepts JPEG and PNG reference images only.',
			);
		}
		this.checkDimensions(bytes, format, label, name);
		return bytes.toString('base64');
	}

	private checkDimensions(bytes: Buffer, format: 'png' | 'jpeg', label: string, name: string): void {
		const size = imageDimensions(bytes, format);
		if (!size) this.fail(`${label} ("${name}") is not a readable ${format.toUpperCase()} image`);
		const { width, height } = size;
		if (width < LIMITS.imageMinSide || height < LIMITS.imageMinSide) {
			this.fail(`${label} ("${name}") is ${width}×${height} px; each side must be at least ${LIMITS.imageMinSide} px`);
		}
		const ratio = width / height;
		if (ratio > LIMITS.imageMaxAspect || ratio < 1 / LIMITS.imageMaxAspect) {
			this.fail(`${label} ("${name}") is ${width}×${height} px; its aspect ratio must be between 1:2.5 and 2.5:1`);
		}
	}

	private async imageList(): Promise<IDataObject[]> {
		const entries = this.parameter<{ image?: ReferenceImageEntry[] }>('referenceImages', 'Reference Images', {}).image ?? [];
		const list: IDataObject[] = [];
		for (const [offset, entry] of entries.entries()) {
			const position = offset + 1;
			const image =
				entry.source === 'binary'
					? await this.binaryReference(entry.binaryPropertyName, position)
					: this.urlReference(entry.url, position);
			list.push({ image });
		}
		return list;
	}

	private elementList(): IDataObject[] {
		const entries = this.parameter<{ element?: Array<{ elementId?: unknown }> }>('elements', 'Elements', {}).element ?? [];
		return entries.map((entry, offset) => {
			const id = this.text(entry.elementId, `Element ${offset + 1} ID`).trim();
			if (!id) this.fail(`Element ${offset + 1}: the element ID is empty`);
			// Kling element IDs are numbers; keep anything else (or too large for a JS number) as text.
			const numeric = /^\d+$/.test(id) && Number.isSafeInteger(Number(id));
			return { element_id: numeric ? Number(id) : id };
		});
	}

	private countOptions(resultType: ResultType): IDataObject {
		const count = IMAGE_COUNTS[resultType];
		return { [count.field]: this.integer(count.parameter, count.label, count.min, count.max, count.default) };
	}

	private callbackUrl(value: unknown): string | undefined {
		const text = this.text(value, 'Callback URL').trim();
		if (!text) return undefined;
		try {
			const url = new URL(text);
			if (url.protocol === 'https:' || url.protocol === 'http:') return text;
		} catch {
			// reported below
		}
		return this.fail(`Callback URL "${text}" is not a valid http(s) URL`);
	}

	/** A task with a Callback URL always gets one: its callback token is made for it. */
	private externalTaskId(fields: AdditionalFields, hasCallback: boolean): string | undefined {
		const given = this.text(fields.externalTaskId, 'External Task ID').trim();
		if (given) return given;
		if (!fields.generateExternalTaskId && !hasCallback) return undefined;
		const random = Math.random().toString(36).slice(2, 10);
		return `n8n-${this.ctx.getExecutionId() ?? 'manual'}-${this.itemIndex}-${random}`;
	}

	async build(options: { requireWatermark: boolean }): Promise<CreateRequest> {
		const prompt = this.prompt();
		const modelName = this.choice('modelName', 'Model', MODELS);
		const imageList = await this.imageList();
		const elementList = this.elementList();
		const references = imageList.length + elementList.length;
		if (references > LIMITS.referencesMax) {
			this.fail(
				`${imageList.length} reference images and ${elementList.length} elements make ${references}; the API allows at most ${LIMITS.referencesMax} together`,
			);
		}
		const resolution = this.choice('resolution', 'Resolution', RESOLUTIONS);
		const resultType = this.choice('resultType', 'Result Type', RESULT_TYPES) as ResultType;
		const counts = this.countOptions(resultType);
		const aspectRatio = this.choice('aspectRatio', 'Aspect Ratio', ASPECT_RATIOS);
		const fields = this.parameter<AdditionalFields>('additionalFields', 'Additional Fields', {});
		if (options.requireWatermark && fields.watermark !== true) {
			this.fail(
				'"Download Watermarked Image" is on but "Watermark" is not',
				'Turn on Watermark under Additional Fields so the task returns watermarked images.',
			);
		}
		const callbackUrl = this.callbackUrl(fields.callbackUrl);
		const externalTaskId = this.externalTaskId(fields, callbackUrl !== undefined);

		const body: IDataObject = { model_name: modelName, prompt };
		if (imageList.length) body.image_list = imageList;
		if (elementList.length) body.element_list = elementList;
		Object.assign(body, { resolution, result_type: resultType, ...counts, aspect_ratio: aspectRatio });
		if (typeof fields.watermark === 'boolean') body.watermark_info = { enabled: fields.watermark };
		if (callbackUrl && externalTaskId) {
			body.callback_url = signCallbackUrl(this.callbackKey, callbackUrl, externalTaskId, Date.now());
		}
		if (externalTaskId) body.external_task_id = externalTaskId;
		return { body, externalTaskId };
	}
}
