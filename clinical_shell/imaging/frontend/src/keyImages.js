// Key images: the reader marks the slice in view (the axial view of a CT, the image of a
// radiograph) with an optional note; the study's key images are listed beside the images, and a
// click on one brings its slice back. Stored by the shell (/api/v1/imaging/studies/<id>/
// key-images, the viewer's access rule, audited); this module only calls it and draws the list.
import { fill } from './overlays.js';

async function call(url, method, csrfToken, body) {
  const response = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: {
      Accept: 'application/json',
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      ...(method === 'GET' ? {} : { 'X-CSRFToken': csrfToken }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    // the shell answers problem details in the reader's language
    const problem = await response.json().catch(() => ({}));
    throw new Error(problem.detail || String(response.status));
  }
  return response.json();
}

export class KeyImagePanel {
  // `currentIndex()`: index (in config order) of the slice in view; `jumpTo(index)`: show it
  constructor(root, config, texts, { currentIndex, jumpTo }) {
    this.root = root;
    this.url = config.keyImagesUrl;
    this.instanceIds = config.instanceIds;
    this.texts = texts;
    this.currentIndex = currentIndex;
    this.jumpTo = jumpTo;
    this.csrfToken = root.dataset.csrfToken ?? '';
    this.items = [];
    this.part = (role) => root.querySelector(`[data-role="${role}"]`);
    this.form = this.part('key-form');
    this.note = this.form?.querySelector('input[name="note"]');
    this.markButton = root.querySelector('[data-action="key-mark"]');
    this.unmarkButton = root.querySelector('[data-action="key-unmark"]');
    this.shownIndex = -1;
  }

  async start() {
    if (!this.form || !this.url) return;
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.save('PUT', { note: this.note.value });
    });
    this.unmarkButton.addEventListener('click', () => this.save('DELETE'));
    this.markButton.disabled = false;
    this.render(await call(this.url, 'GET', this.csrfToken));
  }

  instanceUrl(instanceId) {
    return `${this.url.replace(/\/$/, '')}/${instanceId}`;
  }

  async save(method, body) {
    const index = this.currentIndex();
    const instanceId = this.instanceIds[index];
    if (instanceId === undefined) return;
    const status = this.part('key-status');
    this.markButton.disabled = true;
    try {
      this.render(await call(this.instanceUrl(instanceId), method, this.csrfToken, body));
      status.textContent = method === 'DELETE' ? this.texts.keyRemoved : this.texts.keySaved;
    } catch (error) {
      status.textContent = `${this.texts.keyFailed}: ${error.message}`;
    } finally {
      this.markButton.disabled = false;
    }
  }

  render(items) {
    this.items = items;
    const list = this.part('key-images');
    list.replaceChildren(
      ...items
        .filter((item) => this.instanceIds.includes(item.instance_id))
        .map((item) => {
          const li = document.createElement('li');
          li.dataset.instance = String(item.instance_id);
          const button = document.createElement('button');
          button.type = 'button';
          button.textContent = fill(this.texts.keySlice, {
            n: item.slice_number,
            total: item.slice_count,
          });
          button.addEventListener('click', () =>
            this.jumpTo(this.instanceIds.indexOf(item.instance_id)),
          );
          li.append(button);
          if (item.note) li.append(` ${item.note}`);
          const who = document.createElement('div');
          who.className = 'muted';
          who.textContent = item.marked_by_name;
          li.append(who);
          return li;
        }),
    );
    // only this series' key images are listed here; the report page lists the whole study's
    this.part('key-empty').hidden = list.children.length > 0;
    this.shownIndex = -1;
    this.update();
  }

  // the form follows the slice in view: its number, and whether (with which note) it is marked
  update() {
    const index = this.currentIndex();
    if (index === this.shownIndex || index < 0) return;
    this.shownIndex = index;
    const instanceId = this.instanceIds[index];
    const marked = this.items.find((item) => item.instance_id === instanceId);
    this.part('key-current').textContent = fill(this.texts.keySlice, {
      n: index + 1,
      total: this.instanceIds.length,
    });
    this.root.dataset.keyMarked = String(Boolean(marked));
    this.unmarkButton.hidden = !marked;
    this.note.value = marked ? marked.note : '';
    for (const li of this.part('key-images').children) {
      li.setAttribute('aria-current', String(li.dataset.instance === String(instanceId)));
    }
  }
}
