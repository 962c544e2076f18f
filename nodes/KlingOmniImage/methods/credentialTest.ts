import type {
	ICredentialsDecrypted,
	ICredentialTestFunctions,
	IDataObject,
	INodeCredentialTestResult,
} from 'n8n-workflow';

import { normalizeBaseUrl, OMNI_IMAGE_PATH } from '../transport';

/** A task id no account can have: querying it proves the key without creating (paying for) a task. */
const PROBE_TASK_ID = 'n8n-credential-check';

interface ProbeResponse {
	statusCode: number;
	body: unknown;
}

function bodyOf(response: ProbeResponse): IDataObject {
	let body = response.body;
	if (typeof body === 'string') {
		try {
			body = JSON.parse(body);
		} catch {
			return {};
		}
	}
	return body && typeof body === 'object' ? (body as IDataObject) : {};
}

function providerMessage(body: IDataObject): string {
	const nested = body.error as IDataObject | undefined;
	const message = body.message ?? nested?.message;
	return typeof message === 'string' ? message : '';
}

/**
 * Judges the probe's answer. The key works when the API accepts the call or answers that the task
 * does not exist (as an HTTP error status or as HTTP 200 with a non-zero code, both seen in practice).
 */
export function judgeProbe(response: ProbeResponse): INodeCredentialTestResult {
	const body = bodyOf(response);
	const message = providerMessage(body);
	const status = response.statusCode;
	if (status === 401 || status === 403) {
		return { status: 'Error', message: `CometAPI rejected the API key (HTTP ${status})${message ? `: ${message}` : ''}` };
	}
	if (/task[_ ]?not[_ ]?(exist|found)/i.test(`${String(body.code)} ${message}`) || status === 404) {
		return { status: 'OK', message: 'Connection successful' };
	}
	if (status < 400 && (body.code === 0 || body.code === '0')) {
		return { status: 'OK', message: 'Connection successful' };
	}
	const detail = message || `HTTP ${status}`;
	return { status: 'Error', message: `CometAPI did not accept the test request: ${detail}` };
}

export async function cometApiKlingApiTest(
	this: ICredentialTestFunctions,
	credential: ICredentialsDecrypted,
): Promise<INodeCredentialTestResult> {
	const data = credential.data ?? {};
	const baseUrl = normalizeBaseUrl(data.baseUrl);
	try {
		const response = (await this.helpers.request({
			method: 'GET',
			uri: `${baseUrl}${OMNI_IMAGE_PATH}/${PROBE_TASK_ID}`,
			headers: { Authorization: `Bearer ${String(data.apiKey ?? '')}`, Accept: 'application/json' },
			json: true,
			simple: false,
			resolveWithFullResponse: true,
			timeout: 20_000,
		})) as ProbeResponse;
		return judgeProbe(response);
	} catch (error) {
		const code = (error as { code?: string; cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code;
		return { status: 'Error', message: `Could not reach ${baseUrl}${code ? ` (${code})` : ''}` };
	}
}
