/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/*
 * The credential dialog as a user meets it. n8n 2.41's dialog has no Test button: it tests the credential
 * when it opens and when it is saved, and offers Retry. The good key is the one `npm start` imported (the
 * simulator's); the wrong key is typed into a new credential from the node's credential list.
 */
import { sleep, until } from '../support/wait';
import { Editor } from './editor';

const CREDENTIAL_NAME = 'CometAPI account';
const KEEP_CREDENTIAL_ID = 'cometApiKlingCred1';

let editor: Editor;

beforeAll(async () => {
	editor = await Editor.open('credential');
	await editor.addNodeToNewWorkflow();
});

afterAll(async () => {
	await editor?.close();
	await deleteCredentialsMadeHere().catch((error) => process.stderr.write(`cleanup: ${error}\n`));
});

/** Removes the wrong-key credentials this file created (through the REST API, logged in as the owner). */
async function deleteCredentialsMadeHere(): Promise<void> {
	if (!editor) return;
	const { baseUrl, owner } = editor.state;
	const login = await fetch(`${baseUrl}/rest/login`, {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ emailOrLdapLoginId: owner.email, password: owner.password }),
	});
	const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
	const list = await (await fetch(`${baseUrl}/rest/credentials`, { headers: { cookie } })).json();
	for (const credential of list.data ?? []) {
		if (credential.type === 'cometApiKlingApi' && credential.id !== KEEP_CREDENTIAL_ID) {
			await fetch(`${baseUrl}/rest/credentials/${credential.id}`, { method: 'DELETE', headers: { cookie } });
		}
	}
}

async function closeDialog(): Promise<void> {
	await editor.page.click('[data-test-id=editCredential-modal] .el-dialog__headerbtn');
	await editor.page.waitForSelector('[data-test-id=editCredential-modal]', { hidden: true });
}

test('opening the imported credential tests it: "Connection tested successfully"', async () => {
	const chosen = await editor.page.$eval(
		'[data-test-id=node-credentials-select] input',
		(el) => (el as HTMLInputElement).value,
	);
	expect(chosen).toBe(CREDENTIAL_NAME);
	await editor.page.click('[data-test-id=credential-edit-button]');
	await editor.page.waitForSelector('[data-test-id=editCredential-modal]');
	const text = await until('the test result in the credential dialog', async () => {
		const t = await editor.credentialDialogText();
		return /Connection tested successfully|Couldn.t connect/.test(t) ? t : '';
	});
	await editor.shot('good-key');
	expect(text).toContain('Connection tested successfully');
	expect(text).not.toMatch(/Couldn.t connect/);
	await closeDialog();
});

test('a wrong key: saving tests it and shows CometAPI\'s answer; Retry tests again with the same answer', async () => {
	const { page, state } = editor;
	expect(state.simulatorUrl).toBeTruthy();
	await page.click('[data-test-id=node-credentials-select]');
	await page.waitForSelector('[data-test-id=node-credentials-select-item-new]', { visible: true });
	await page.click('[data-test-id=node-credentials-select-item-new]');
	const key = await page.waitForSelector('[data-test-id=editCredential-modal] [data-test-id=parameter-input-apiKey] input');
	await key!.type('sk-this-key-is-wrong');
	const baseUrl = await page.waitForSelector('[data-test-id=editCredential-modal] [data-test-id=parameter-input-baseUrl] input');
	await baseUrl!.click({ count: 3 });
	await page.keyboard.press('Backspace');
	await baseUrl!.type(state.simulatorUrl!);
	await editor.shot('wrong-key-typed');
	// The typed values reach the form with a short delay; a click before that only leaves the field.
	await sleep(1000);
	const saved = page.waitForResponse((r) => r.request().method() === 'POST' && /\/rest\/credentials\/?$/.test(r.url()), {
		timeout: 5000,
	});
	await page.click('[data-test-id=credential-save-button]');
	if (!(await saved.then(() => true).catch(() => false))) await page.click('[data-test-id=credential-save-button]');

	const failed = await until('the test result after saving', async () => {
		const t = await editor.credentialDialogText();
		return /Connection tested successfully|Couldn.t connect/.test(t) ? t : '';
	});
	expect(failed).toMatch(/Couldn.t connect with these settings/);
	expect(failed).not.toContain('Connection tested successfully');
	if (!failed.includes('CometAPI rejected the API key')) await editor.clickText('[data-test-id=editCredential-modal]', 'More details');
	const details = await until('the details of the failed test', async () => {
		const t = await editor.credentialDialogText();
		return t.includes('CometAPI rejected') ? t : '';
	});
	await editor.shot('wrong-key-result');
	expect(details).toContain('CometAPI rejected the API key (HTTP 401). Check the key.');
	expect(details).toContain('Retry');

	const retried = page.waitForResponse((r) => r.url().includes('/rest/credentials/test'), { timeout: 30000 });
	await editor.clickText('[data-test-id=editCredential-modal]', 'Retry');
	await retried;
	const again = await until('the result of Retry', async () => {
		const t = await editor.credentialDialogText();
		return /Couldn.t connect|Connection tested successfully/.test(t) ? t : '';
	});
	await editor.shot('wrong-key-retried');
	expect(again).toMatch(/Couldn.t connect with these settings/);
	await closeDialog();
});
