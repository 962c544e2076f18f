'use strict';
// Create-body validation per the create call's documented body rules. Returns the first
// problem as a message naming the field, or undefined when the body is acceptable.

const { readImageSize } = require('./images');

const MODEL_NAMES = ['kling-image-o1', 'kling-v3-omni'];
const RESOLUTIONS = ['1k', '2k', '4k'];
const RESULT_TYPES = ['single', 'series'];
const ASPECT_RATIOS = ['16:9', '9:16', '1:1', '4:3', '3:4', '3:2', '2:3', '21:9', 'auto'];
const MAX_PROMPT_CHARS = 2500;
const MAX_REFERENCES = 10;
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const MIN_IMAGE_SIDE = 300;
const MAX_ASPECT = 2.5;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v, min, max) => Number.isInteger(v) && v >= min && v <= max;
const oneOf = (field, value, allowed) =>
	allowed.includes(value) ? undefined : `${field} must be one of ${allowed.join(', ')}`;

function checkPrompt(prompt) {
	if (typeof prompt !== 'string' || prompt.trim() === '') return 'prompt is required';
	// Counted in Unicode code points, as the provider counts characters.
	if ([...prompt].length > MAX_PROMPT_CHARS) return `prompt must be at most ${MAX_PROMPT_CHARS} characters`;
	return undefined;
}

function checkHttpsUrl(field, value) {
	let url;
	try {
		url = new URL(value);
	} catch {
		return `${field} must be an https URL or Base64 data`;
	}
	return url.protocol === 'https:' ? undefined : `${field} URL must use https`;
}

/** Base64 content is decoded and checked like the provider does: jpg/png, size, sides, aspect. */
function checkBase64Image(field, value) {
	if (!BASE64_RE.test(value)) return `${field} must be an https URL or Base64 data`;
	const bytes = Buffer.from(value, 'base64');
	if (bytes.length > MAX_IMAGE_BYTES) return `${field} must be at most 10 MB`;
	const size = readImageSize(bytes);
	if (!size) return `${field} must be a jpg, jpeg or png image`;
	if (Math.min(size.width, size.height) < MIN_IMAGE_SIDE) {
		return `${field} must be at least ${MIN_IMAGE_SIDE}px on each side (got ${size.width}x${size.height})`;
	}
	const ratio = size.width / size.height;
	if (ratio > MAX_ASPECT || ratio < 1 / MAX_ASPECT) {
		return `${field} aspect ratio must be between 1:2.5 and 2.5:1 (got ${size.width}x${size.height})`;
	}
	return undefined;
}

function checkImageList(list) {
	if (!Array.isArray(list)) return 'image_list must be an array';
	for (let i = 0; i < list.length; i++) {
		const field = `image_list[${i}].image`;
		const image = isObject(list[i]) ? list[i].image : undefined;
		if (typeof image !== 'string' || image === '') return `${field} is required`;
		if (/^data:/i.test(image)) return `${field} must be raw Base64 without a data: prefix`;
		const problem = /^[a-z][a-z0-9+.-]*:\/\//i.test(image)
			? checkHttpsUrl(field, image)
			: checkBase64Image(field, image);
		if (problem) return problem;
	}
	return undefined;
}

function checkElementList(list) {
	if (!Array.isArray(list)) return 'element_list must be an array';
	for (let i = 0; i < list.length; i++) {
		const id = isObject(list[i]) ? list[i].element_id : undefined;
		const ok = (typeof id === 'number' && Number.isInteger(id) && id > 0) || (typeof id === 'string' && id !== '');
		if (!ok) return `element_list[${i}].element_id is required`;
	}
	return undefined;
}

function checkCallbackUrl(value) {
	if (typeof value !== 'string') return 'callback_url must be a URI string';
	try {
		const url = new URL(value);
		if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'callback_url must be an http(s) URI';
	} catch {
		return 'callback_url must be a valid URI';
	}
	return undefined;
}

/**
 * @param body parsed JSON body
 * @param externalIds Set of external_task_id values already used on this account
 */
function validateCreateBody(body, externalIds) {
	if (!isObject(body)) return 'request body must be a JSON object';
	const has = (k) => body[k] !== undefined;
	const resultType = has('result_type') ? body.result_type : 'single';
	const checks = [
		() => checkPrompt(body.prompt),
		() => has('model_name') && oneOf('model_name', body.model_name, MODEL_NAMES),
		() => has('image_list') && checkImageList(body.image_list),
		() => has('element_list') && checkElementList(body.element_list),
		() =>
			(body.image_list?.length ?? 0) + (body.element_list?.length ?? 0) > MAX_REFERENCES &&
			`image_list and element_list together must have at most ${MAX_REFERENCES} items`,
		() => has('resolution') && oneOf('resolution', body.resolution, RESOLUTIONS),
		() => has('result_type') && oneOf('result_type', body.result_type, RESULT_TYPES),
		// n and series_amount are ignored (so not validated) for the other result_type.
		() => resultType === 'single' && has('n') && !isInt(body.n, 1, 9) && 'n must be an integer from 1 to 9',
		() =>
			resultType === 'series' &&
			has('series_amount') &&
			!isInt(body.series_amount, 2, 9) &&
			'series_amount must be an integer from 2 to 9',
		() => has('aspect_ratio') && oneOf('aspect_ratio', body.aspect_ratio, ASPECT_RATIOS),
		() =>
			has('watermark_info') &&
			!(isObject(body.watermark_info) && typeof body.watermark_info.enabled === 'boolean') &&
			'watermark_info.enabled must be a boolean',
		() => has('callback_url') && checkCallbackUrl(body.callback_url),
		() =>
			has('external_task_id') &&
			(typeof body.external_task_id !== 'string' || body.external_task_id === '') &&
			'external_task_id must be a non-empty string',
		() =>
			has('external_task_id') &&
			externalIds.has(body.external_task_id) &&
			`external_task_id "${body.external_task_id}" already exists`,
	];
	for (const check of checks) {
		const problem = check();
		if (problem) return problem;
	}
	return undefined;
}

module.exports = { validateCreateBody, MODEL_NAMES, RESOLUTIONS, RESULT_TYPES, ASPECT_RATIOS };
