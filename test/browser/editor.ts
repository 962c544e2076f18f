/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/*
 * n8n's editor in headless Chromium, driven as a user drives it: log in, open the nodes panel, search, pick,
 * read the form by its labels, open dropdowns and read what they list. Every check reads text the user sees;
 * `shot()` saves a screenshot per step under .ci-results/screenshots/.
 *
 * The selectors are n8n 2.41's data-test-id attributes (the ones n8n's own end-to-end tests use).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, ElementHandle, Page } from 'puppeteer-core';
import puppeteer from 'puppeteer-core';

import { sleep, until } from '../support/wait';

export const SCREENSHOT_DIR = path.resolve(__dirname, '..', '..', '.ci-results', 'screenshots');
export const NODE_TITLE = 'Kling Omni Image (CometAPI)';
export const CREATE_ACTION = 'Create an omni image';

export interface BrowserState {
	workDir: string;
	chromium: string;
	baseUrl: string;
	owner: { email: string; password: string };
	simulatorUrl?: string;
	startOutput: string;
}

export function browserState(): BrowserState {
	const file = process.env.KLING_BROWSER_STATE;
	if (!file) throw new Error('KLING_BROWSER_STATE is not set: run these tests with `npm run test:browser`');
	return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export class Editor {
	private step = 0;

	private constructor(
		readonly browser: Browser,
		readonly page: Page,
		readonly state: BrowserState,
		private readonly profileDir: string,
		private readonly tag: string,
	) {}

	/** A fresh Chromium (new empty profile), logged in as the owner `npm start` created. */
	static async open(tag: string): Promise<Editor> {
		const state = browserState();
		const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kling-chromium-'));
		const browser = await puppeteer.launch({
			executablePath: state.chromium,
			headless: false, // the flag below selects the headless mode
			userDataDir: profileDir,
			defaultViewport: { width: 1440, height: 900 },
			args: [
				'--headless=new',
				'--no-sandbox',
				'--disable-gpu',
				'--disable-quic',
				'--no-first-run',
				'--disable-background-networking',
				'--disable-component-update',
				'--disable-sync',
				'--window-size=1440,900',
			],
		});
		const page = await browser.newPage();
		page.setDefaultTimeout(30000);
		// "Leave the page?" when navigating away from a workflow with unsaved changes: yes.
		page.on('dialog', (dialog) => void dialog.accept().catch(() => undefined));
		const editor = new Editor(browser, page, state, profileDir, tag);
		fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
		await editor.login();
		return editor;
	}

	async close(): Promise<void> {
		await this.browser.close().catch(() => undefined);
		fs.rmSync(this.profileDir, { recursive: true, force: true });
	}

	/** Saves `<tag>-NN-<name>.png` under .ci-results/screenshots and returns its path. */
	async shot(name: string): Promise<string> {
		this.step += 1;
		const file = path.join(SCREENSHOT_DIR, `${this.tag}-${String(this.step).padStart(2, '0')}-${name}.png`);
		await this.page.screenshot({ path: file });
		return file;
	}

	async login(): Promise<void> {
		const { page, state } = this;
		await page.goto(`${state.baseUrl}/signin`, { waitUntil: 'networkidle2' });
		await page.waitForSelector('[data-test-id=emailOrLdapLoginId] input, input[name=emailOrLdapLoginId]');
		await page.type('input[name=emailOrLdapLoginId]', state.owner.email);
		await page.type('input[name=password]', state.owner.password);
		await page.click('[data-test-id=form-submit-button]');
		await until('the editor after signing in', async () => !page.url().includes('/signin'), 30000);
	}

	async goto(pathname: string): Promise<void> {
		await this.page.goto(`${this.state.baseUrl}${pathname}`, { waitUntil: 'domcontentloaded' });
	}

	async newWorkflow(): Promise<void> {
		await this.goto('/workflow/new');
		await this.page.waitForSelector('[data-test-id=canvas-add-button]');
	}

	// ----------------------------------------------------------------------------------------------------
	// The nodes panel

	/** Text of the open nodes panel. */
	async panelText(): Promise<string> {
		return this.page.evaluate(() => {
			const panels = [...document.querySelectorAll('[data-test-id=node-creator]')].filter((el) => (el as HTMLElement).checkVisibility());
			return panels.map((el) => (el as HTMLElement).innerText).join('\n');
		});
	}

	/** "Add first step…" on an empty canvas: the panel "What triggers this workflow?". */
	async openTriggerPanel(): Promise<void> {
		await this.page.click('[data-test-id=canvas-add-button]');
		await this.page.waitForSelector('[data-test-id=node-creator-search-bar]', { visible: true });
	}

	/** The + on a node's output: the panel "What happens next?". */
	async openNextPanel(nodeName: string): Promise<void> {
		const plus = await this.page.evaluateHandle((name) => {
			const handles = [...document.querySelectorAll('[data-test-id=canvas-handle-plus]')];
			return (
				handles.find(
					(h) => h.closest('.vue-flow__node')?.querySelector('[data-test-id=canvas-node]')?.getAttribute('data-node-name') === name,
				) ?? null
			);
		}, nodeName);
		const element = plus.asElement() as ElementHandle<Element> | null;
		if (!element) throw new Error(`no "+" on the output of the node "${nodeName}"`);
		await element.click();
		await this.page.waitForSelector('[data-test-id=node-creator-search-bar]', { visible: true });
	}

	/** Names of the entries the panel lists (nodes or actions). */
	async panelItems(): Promise<string[]> {
		return this.page.$$eval('[data-test-id=node-creator] [data-test-id=node-creator-item-name]', (els) =>
			els
				.filter((el) => (el as HTMLElement).checkVisibility())
				.map((el) => (el as HTMLElement).innerText.trim())
				.filter(Boolean),
		);
	}

	/**
	 * Types `term` into the panel's search box (replacing what was there) and returns the names listed once the
	 * list has settled (or the panel's text when it answers "No results").
	 */
	async search(term: string): Promise<{ items: string[]; text: string }> {
		await this.page.waitForSelector('[data-test-id=node-creator-search-bar]', { visible: true });
		const focused = await this.page.evaluate(() => {
			const inputs = [...document.querySelectorAll('[data-test-id=node-creator-search-bar]')] as HTMLInputElement[];
			const input = inputs.find((el) => el.checkVisibility());
			input?.focus();
			return !!input && document.activeElement === input;
		});
		if (!focused) throw new Error('the nodes panel shows no search box');
		await this.page.keyboard.down('Control');
		await this.page.keyboard.press('KeyA');
		await this.page.keyboard.up('Control');
		await this.page.keyboard.press('Backspace');
		await this.page.keyboard.type(term, { delay: 20 });
		let previous = '';
		let stable = 0;
		// Settled: the same list three polls in a row.
		await until(`the results for "${term}"`, async () => {
			const now = JSON.stringify(await this.panelItems()) + (await this.panelText()).includes('No results');
			stable = now === previous ? stable + 1 : 0;
			previous = now;
			return stable >= 3;
		});
		return { items: await this.panelItems(), text: await this.panelText() };
	}

	async clickPanelItem(name: string): Promise<void> {
		const items = await this.page.$$('[data-test-id=node-creator] [data-test-id=node-creator-item-name]');
		for (const item of items) {
			if ((await item.evaluate((el) => (el as HTMLElement).checkVisibility() && (el as HTMLElement).innerText.trim())) === name) {
				await item.click();
				return;
			}
		}
		throw new Error(`the nodes panel lists no "${name}" (it lists: ${(await this.panelItems()).join(', ')})`);
	}

	/**
	 * Clicks the node in the panel's results and waits for its details (triggers and actions) with the
	 * actions shown: under "What triggers this workflow?" n8n folds them away ("Actions (3)") when the
	 * package also has a trigger.
	 */
	async openNodeInPanel(): Promise<string[]> {
		await this.clickPanelItem(NODE_TITLE);
		await until('the node\'s details in the panel', async () => (await this.panelText()).includes('Actions ('));
		await sleep(600); // the details slide in
		if (!(await this.panelItems()).includes(CREATE_ACTION)) {
			const header = await this.page.evaluateHandle(() => {
				const headers = [...document.querySelectorAll('[data-test-id=node-creator] [data-test-id=node-creator-category-item]')];
				return headers.find((h) => (h as HTMLElement).checkVisibility() && /^Actions \(/.test((h as HTMLElement).innerText.trim())) ?? null;
			});
			const element = header.asElement() as ElementHandle<Element> | null;
			if (!element) throw new Error(`the node's details show no "Actions" section:\n${await this.panelText()}`);
			await element.click();
		}
		return until(`the action "${CREATE_ACTION}" in the panel`, async () => {
			const items = await this.panelItems();
			return items.includes(CREATE_ACTION) ? items : null;
		});
	}

	/** In the panel: the node, then its action; waits for the node's form to open. */
	async addNodeFromPanel(action = CREATE_ACTION): Promise<void> {
		await this.openNodeInPanel();
		await this.clickPanelItem(action);
		await this.page.waitForSelector('[data-test-id=ndv] [data-test-id=node-parameters]');
		await sleep(500);
	}

	/** A new workflow with the node added as a user adds it: the trigger panel, a search for "kling", its action. */
	async addNodeToNewWorkflow(): Promise<void> {
		await this.newWorkflow();
		await this.openTriggerPanel();
		await this.search('kling');
		await this.addNodeFromPanel();
	}

	/** Names of the nodes on the canvas. */
	async canvasNodes(): Promise<string[]> {
		return this.page.$$eval('[data-test-id=canvas-node]', (els) => els.map((el) => el.getAttribute('data-node-name') ?? ''));
	}

	async openNode(name: string): Promise<void> {
		const node = await this.page.waitForSelector(`[data-test-id=canvas-node][data-node-name="${name}"]`);
		await node!.click({ count: 2 });
		await this.page.waitForSelector('[data-test-id=ndv] [data-test-id=node-parameters]');
		await sleep(300);
	}

	async closeNode(): Promise<void> {
		await this.page.click('[data-test-id=ndv-close-button]');
		await this.page.waitForSelector('[data-test-id=ndv]', { hidden: true }).catch(() => undefined);
		await sleep(300);
	}

	// ----------------------------------------------------------------------------------------------------
	// The node's form

	/** Labels of the parameters the open form shows, top to bottom. */
	async formLabels(): Promise<string[]> {
		return this.page.$$eval('[data-test-id=ndv] [data-test-id=node-parameters] label.n8n-input-label', (els) =>
			els
				.filter((el) => (el as HTMLElement).checkVisibility())
				.map((el) => (el as HTMLElement).innerText.split('\n')[0].replace(/\s*\*$/, '').trim())
				.filter(Boolean),
		);
	}

	/** The input element of the parameter labelled `label` (first match, top-level first). */
	private async field(label: string): Promise<ElementHandle<Element>> {
		const handle = await this.page.evaluateHandle((wanted) => {
			const labels = [...document.querySelectorAll('[data-test-id=ndv] [data-test-id=node-parameters] label.n8n-input-label')];
			const match = labels.find((el) => (el as HTMLElement).innerText.split('\n')[0].replace(/\s*\*$/, '').trim() === wanted);
			const item = match?.closest('[data-test-id=parameter-item]');
			return item?.querySelector('[data-test-id^="parameter-input-"]') ?? null;
		}, label);
		const element = handle.asElement() as ElementHandle<Element> | null;
		if (!element) throw new Error(`the form shows no field "${label}" (it shows: ${(await this.formLabels()).join(', ')})`);
		return element;
	}

	/** What a dropdown shows as chosen. */
	async selectedOption(label: string): Promise<string> {
		const field = await this.field(label);
		return field.evaluate((el) => {
			const input = el.querySelector('input') as HTMLInputElement | null;
			const shown = el.querySelector('.el-select__selected-item:not(.is-hidden), .el-select__placeholder') as HTMLElement | null;
			return (input?.value || shown?.innerText || '').trim();
		});
	}

	/** Names listed by the dropdown that is open ([] while none is). */
	private async openDropdownItems(): Promise<string[]> {
		return this.page.evaluate(() => {
			const shown = (el: Element) => {
				const box = el.getBoundingClientRect();
				return (el as HTMLElement).checkVisibility() && box.width > 0 && box.height > 0;
			};
			const poppers = [...document.querySelectorAll('.el-popper[aria-hidden=false]')].filter(
				(p) => p.querySelector('.el-select-dropdown__item') && shown(p),
			);
			const popper = poppers[poppers.length - 1];
			if (!popper) return [];
			return [...popper.querySelectorAll('.el-select-dropdown__item')].map((li) =>
				((li.querySelector('.option-headline') as HTMLElement | null)?.innerText ?? (li as HTMLElement).innerText).trim(),
			);
		});
	}

	/** Until no dropdown is shown, including one still fading out (it would take the next click). */
	private async waitForDropdownClosed(): Promise<void> {
		await until(
			'the dropdown to close',
			() =>
				this.page.evaluate(
					() => ![...document.querySelectorAll('.el-select__popper')].some((p) => (p as HTMLElement).checkVisibility()),
				),
			5000,
		);
	}

	/** Opens the dropdown of `label` and returns the option names it lists, in order; closes it again. */
	async dropdownOptions(label: string, shotName?: string): Promise<string[]> {
		const field = await this.field(label);
		await field.click();
		const options = await until(`the options of "${label}"`, async () => {
			const items = await this.openDropdownItems();
			return items.length ? items : null;
		});
		await sleep(300); // the opening animation, for the screenshot
		if (shotName) await this.shot(shotName);
		await this.page.keyboard.press('Escape');
		await this.waitForDropdownClosed();
		return options;
	}

	/** Picks `option` in the dropdown of `label`. */
	async choose(label: string, option: string): Promise<void> {
		const field = await this.field(label);
		await field.click();
		await until(`the option "${option}" of "${label}"`, async () => (await this.openDropdownItems()).includes(option));
		await sleep(300);
		const handle = await this.page.evaluateHandle((wanted) => {
			const poppers = [...document.querySelectorAll('.el-popper[aria-hidden=false]')].filter(
				(p) => p.querySelector('.el-select-dropdown__item') && (p as HTMLElement).checkVisibility(),
			);
			const popper = poppers[poppers.length - 1];
			return (
				[...(popper?.querySelectorAll('.el-select-dropdown__item') ?? [])].find(
					(li) => ((li.querySelector('.option-headline') as HTMLElement | null)?.innerText ?? (li as HTMLElement).innerText).trim() === wanted,
				) ?? null
			);
		}, option);
		const item = handle.asElement() as ElementHandle<Element> | null;
		if (!item) throw new Error(`the dropdown of "${label}" has no "${option}"`);
		await item.click();
		await this.waitForDropdownClosed();
		await until(`"${label}" to show "${option}"`, async () => (await this.selectedOption(label)) === option, 5000);
		await sleep(300);
	}

	/** The placeholder text of a text field, as the browser renders it. */
	async placeholder(label: string): Promise<string> {
		const field = await this.field(label);
		return field.evaluate((el) => {
			const input = (el.matches('input, textarea') ? el : el.querySelector('textarea, input')) as HTMLInputElement | null;
			return input?.placeholder ?? '';
		});
	}

	/** Text of the open credential dialog. */
	async credentialDialogText(): Promise<string> {
		return this.page.$eval('[data-test-id=editCredential-modal]', (el) => (el as HTMLElement).innerText);
	}

	/** Clicks the first visible element inside `scope` whose own text is exactly `text`. */
	async clickText(scope: string, text: string): Promise<void> {
		const handle = await this.page.evaluateHandle(
			(sel, wanted) => {
				const root = document.querySelector(sel);
				if (!root) return null;
				return (
					[...root.querySelectorAll('a, button, span, div')].find(
						(el) => (el as HTMLElement).checkVisibility() && el.textContent?.trim() === wanted && el.children.length === 0,
					) ?? null
				);
			},
			scope,
			text,
		);
		const element = handle.asElement() as ElementHandle<Element> | null;
		if (!element) throw new Error(`no "${text}" to click in ${scope}`);
		await element.click();
	}
}
