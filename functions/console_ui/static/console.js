// The console's only script: turns the server-rendered forms into JSON documents, sends them with the
// page's token (and the ETag they were read with), and shows what came back. The conventions it reads
// (data-path, data-list, data-row, data-key, data-type, data-when, data-post) are described at the top of
// functions/console_ui/pages.py. No framework, no build step.
"use strict";

(function () {
  const token = () => document.querySelector('meta[name="csrf-token"]').content;

  // ---- flash messages survive the reload that follows a change ----------------------------------------
  function flash(text, kind) {
    sessionStorage.setItem("gd-flash", JSON.stringify({ text: text, kind: kind || "ok" }));
  }
  function showFlash() {
    const raw = sessionStorage.getItem("gd-flash");
    if (!raw) return;
    sessionStorage.removeItem("gd-flash");
    const message = JSON.parse(raw);
    const box = document.getElementById("flash");
    if (!box) return;
    box.className = "banner " + message.kind;
    box.textContent = message.text;
  }

  // ---- document paths ----------------------------------------------------------------------------------
  function setPath(target, path, value) {
    const keys = path.split(".");
    let node = target;
    for (let i = 0; i < keys.length - 1; i++) {
      if (node[keys[i]] === undefined || node[keys[i]] === null) node[keys[i]] = {};
      node = node[keys[i]];
    }
    const last = keys[keys.length - 1];
    if (value === undefined) delete node[last];
    else node[last] = value;
  }

  function valueOf(control) {
    const type = control.dataset.type;
    if (type === "bool") return control.checked;
    if (control.type === "radio") return control.checked ? control.value : undefined;
    const text = control.value.trim();
    if (type === "list") return text ? text.split(",").map((s) => s.trim()).filter(Boolean) : [];
    if (text === "") return control.dataset.empty === "null" ? null : undefined;
    if (type === "int") return parseInt(text, 10);
    return text;
  }

  // The element whose scope a control or list belongs to: its nearest row, or the form.
  function scopeOf(element, form) {
    const row = element.parentElement.closest("[data-row], form");
    return row && form.contains(row) ? row : form;
  }

  function whenHolds(list, form) {
    const when = list.dataset.when;
    if (!when) return true;
    const [path, wanted] = when.split("=");
    const chosen = form.querySelector('[data-path="' + path + '"]:checked');
    return chosen !== null && chosen.value === wanted;
  }

  // Builds the object of one scope (the form or a row); `where` maps document paths to elements.
  function collect(scope, form, prefix, where) {
    const out = {};
    scope.querySelectorAll("[data-path]").forEach((control) => {
      if (scopeOf(control, form) !== scope || control.closest("template")) return;
      const value = valueOf(control);
      if (control.type === "radio" && value === undefined) return;
      setPath(out, control.dataset.path, value === undefined ? "\u0000omit" : value);
      where[prefix + control.dataset.path] = control;
    });
    scope.querySelectorAll("[data-list]").forEach((list) => {
      if (scopeOf(list, form) !== scope || list.closest("template")) return;
      const path = list.dataset.list;
      const items = [];
      if (whenHolds(list, form)) {
        list.querySelectorAll("[data-row]").forEach((row) => {
          if (row.parentElement.closest("[data-list]") !== list || row.closest("template")) return;
          const keys = Array.from(row.querySelectorAll("[data-key]")).filter((k) => scopeOf(k, form) === row);
          if (keys.length && keys.every((k) => k.value.trim() === "")) return;
          const itemPath = prefix + path + "[" + items.length + "]";
          where[itemPath] = row;
          items.push(collect(row, form, itemPath + ".", where));
        });
      }
      where[prefix + path] = list;
      setPath(out, path, items);
    });
    return out;
  }

  // Overlays what the form collected on the stored document; "\u0000omit" removes a key.
  function overlay(base, changes) {
    Object.keys(changes).forEach((key) => {
      const value = changes[key];
      if (value === "\u0000omit") delete base[key];
      else if (value && typeof value === "object" && !Array.isArray(value) && base[key] && typeof base[key] === "object" && !Array.isArray(base[key])) overlay(base[key], value);
      else base[key] = value;
    });
    return base;
  }

  function clean(value) {
    if (Array.isArray(value)) return value.map(clean);
    if (value && typeof value === "object") {
      const out = {};
      Object.keys(value).forEach((k) => { if (value[k] !== "\u0000omit") out[k] = clean(value[k]); });
      return out;
    }
    return value;
  }

  function documentOf(form) {
    const where = {};
    const baseNode = form.querySelector("script[data-base]");
    const base = JSON.parse(baseNode ? baseNode.textContent : "{}");
    const changes = collect(form, form, "", where);
    return { body: clean(overlay(base, changes)), where: where };
  }

  // ---- problems next to their fields, all at once ------------------------------------------------------
  function clearProblems(form) {
    form.querySelectorAll(".problem").forEach((p) => p.remove());
    form.querySelectorAll("[aria-invalid]").forEach((c) => c.removeAttribute("aria-invalid"));
    const summary = form.querySelector(".form-problems");
    if (summary) { summary.textContent = ""; summary.className = "form-problems"; }
  }

  function placeFor(path, where) {
    let candidate = path;
    while (candidate) {
      if (where[candidate]) return where[candidate];
      const cut = Math.max(candidate.lastIndexOf("."), candidate.lastIndexOf("["));
      candidate = cut > 0 ? candidate.slice(0, cut) : "";
    }
    return null;
  }

  let problemCount = 0;
  function showProblems(form, problems, where) {
    const summary = form.querySelector(".form-problems");
    const list = document.createElement("ul");
    problems.forEach((problem) => {
      const id = "problem-" + (++problemCount);
      const text = (problem.severity === "warning" ? "Warning: " : "") + problem.message + (problem.fix ? " " + problem.fix : "");
      const target = placeFor(problem.path || "", where);
      const note = document.createElement("p");
      note.className = "problem " + (problem.severity || "error");
      note.id = id;
      note.textContent = text;
      if (target && target.matches("input, select, textarea")) {
        target.setAttribute("aria-invalid", "true");
        target.setAttribute("aria-describedby", id);
        target.insertAdjacentElement("afterend", note);
      } else if (target) {
        (target.matches("tr") ? target.lastElementChild : target).appendChild(note);
      }
      const item = document.createElement("li");
      item.textContent = (problem.path ? problem.path + ": " : "") + text;
      list.appendChild(item);
    });
    if (summary) {
      summary.className = "form-problems banner error";
      const heading = document.createElement("p");
      heading.textContent = "Not saved. " + problems.length + " problem(s), each also shown next to its field:";
      summary.append(heading, list);
      summary.focus();
    }
  }

  function showConflict(form) {
    const summary = form.querySelector(".form-problems") || document.getElementById("flash");
    summary.className = (summary.classList.contains("form-problems") ? "form-problems " : "") + "banner error conflict";
    summary.textContent = "";
    const text = document.createElement("p");
    text.textContent = "Not saved: this was changed by someone else since you opened the page. Reload to see the current version (your edits here will be lost).";
    const reload = document.createElement("button");
    reload.type = "button";
    reload.textContent = "Reload";
    reload.addEventListener("click", () => location.reload());
    summary.append(text, reload);
    summary.focus();
  }

  // ---- sending -----------------------------------------------------------------------------------------
  async function send(method, url, body, etag) {
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": token(), Accept: "application/json" };
    if (etag) headers["If-Match"] = etag;
    const response = await fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, data: data || {} };
  }

  function savedMessage(data) {
    let text = data.version ? "Saved: version " + data.version + "." : "Saved.";
    const warnings = data.warnings || [];
    if (warnings.length) text += " Warnings: " + warnings.map((w) => w.path + ": " + w.message).join(" · ");
    return text;
  }

  function handleFailure(form, reply, where) {
    if (reply.status === 412) return showConflict(form);
    const data = reply.data;
    if (reply.status === 422 && data.problems) return showProblems(form, data.problems, where);
    const details = (data.details || []).map((d) => ({ path: d.field, message: d.message, severity: "error" }));
    showProblems(form, details.length ? details : [{ path: "", message: data.message || "The request failed (" + reply.status + ").", severity: "error" }], where);
  }

  async function submit(form) {
    clearProblems(form);
    const built = documentOf(form);
    const button = form.querySelector('button[type="submit"]');
    if (button) button.disabled = true;
    try {
      const reply = await send(form.dataset.method || "PUT", form.dataset.url, built.body, form.dataset.etag);
      if (reply.status >= 200 && reply.status < 300) return render(form, reply.data);
      handleFailure(form, reply, built.where);
    } finally {
      if (button) button.disabled = false;
    }
  }

  // ---- what a successful reply shows -------------------------------------------------------------------
  function keyBox(data) {
    const box = document.createElement("div");
    box.className = "banner ok key-once";
    const intro = document.createElement("p");
    intro.textContent = "The API key, shown once: copy it into Genesy now (only its hash is kept).";
    const label = document.createElement("label");
    label.htmlFor = "issued-key";
    label.textContent = "API key" + (data.key_header ? " (header " + data.key_header + ")" : "");
    const input = document.createElement("input");
    input.id = "issued-key"; input.readOnly = true; input.value = data.api_key;
    const copy = document.createElement("button");
    copy.type = "button"; copy.textContent = "Copy"; copy.dataset.copy = "issued-key";
    box.append(intro, label, input, copy);
    if (data.page) {
      const link = document.createElement("a");
      link.href = data.page; link.textContent = "Open the workspace " + data.workspace.name;
      const p = document.createElement("p"); p.append(link); box.append(p);
    }
    return box;
  }

  function connectionBox(data) {
    const box = document.createElement("div");
    box.className = "banner " + (data.ok ? "ok" : "error");
    const head = document.createElement("p");
    head.textContent = data.ok ? "Connected: Dynamics answered and every table could be read." : "Not connected: " + (data.error || "a table could not be read.");
    const list = document.createElement("ul");
    (data.tables || []).forEach((t) => {
      const li = document.createElement("li");
      li.textContent = t.table + " (" + t.used_for + "): " + t.message;
      list.append(li);
    });
    box.append(head, list);
    return box;
  }

  function render(origin, data) {
    const kind = origin.dataset.render;
    const target = origin.dataset.result ? document.getElementById(origin.dataset.result) : null;
    if (kind === "key" && target) { target.replaceChildren(keyBox(data)); target.querySelector("input").focus(); return; }
    if (kind === "connection" && target) { target.replaceChildren(connectionBox(data)); return; }
    let text = savedMessage(data);
    if (data.requeued !== undefined) text = data.requeued + " record(s) queued again" + (data.not_retryable ? ", " + data.not_retryable + " cannot be retried." : ".");
    if (data.replayed !== undefined) text = data.replayed + " dead letter(s) replayed on " + data.queue + ".";
    if (data.report !== undefined) text = "Reconciliation ran: " + data.report.requeued + " re-queued, " + data.report.failed + " failed.";
    if (data.workspace && !data.api_key) text = "Saved.";
    flash(text, "ok");
    location.reload();
  }

  async function post(button) {
    const body = JSON.parse(button.dataset.body || "{}");
    if (button.dataset.collect) {
      const picked = Array.from(document.querySelectorAll('input[name="' + button.dataset.collect + '"]:checked')).map((b) => b.value);
      if (!picked.length) { showMessage("Select at least one record first.", "error"); return; }
      body[button.dataset.collect] = picked;
    }
    button.disabled = true;
    try {
      const reply = await send("POST", button.dataset.post, body, button.dataset.etag);
      if (reply.status >= 200 && reply.status < 300) return render(button, reply.data);
      if (reply.status === 412) return showConflict(document.querySelector("form[data-etag]") || document.body);
      const data = reply.data;
      const problems = (data.problems || []).map((p) => p.path + ": " + p.message).join(" · ");
      showMessage((data.message || "The request failed (" + reply.status + ").") + (problems ? " " + problems : ""), "error");
    } finally {
      button.disabled = false;
    }
  }

  function showMessage(text, kind) {
    const box = document.getElementById("flash");
    box.className = "banner " + kind;
    box.textContent = text;
    box.scrollIntoView({ block: "nearest" });
  }

  // ---- rows: add from a template, remove ---------------------------------------------------------------
  function addRow(button) {
    const template = document.getElementById(button.dataset.addRow);
    const target = document.getElementById(button.dataset.target);
    const row = template.content.querySelector("[data-row]").cloneNode(true);
    target.appendChild(row);
    const first = row.querySelector("input, select");
    if (first) first.focus();
  }

  function removeRow(button) {
    const row = button.closest("[data-row]");
    const list = row.parentElement.closest("[data-list]");
    row.remove();
    const next = list && list.querySelector("input, select");
    if (next) next.focus();
  }

  // A column chosen for a fixed value offers that column's choice labels.
  function columnChanged(input) {
    const row = input.closest("[data-row]");
    const target = row && row.querySelector("[data-options-target]");
    if (!target) return;
    const id = input.dataset.optionsFor + "-" + input.value.trim().replace(/[._]/g, "-");
    if (document.getElementById(id)) target.setAttribute("list", id);
    else target.removeAttribute("list");
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!form.dataset.url) return;
    event.preventDefault();
    submit(form);
  });

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.addRow) addRow(button);
    else if (button.classList.contains("remove-row")) removeRow(button);
    else if (button.dataset.post) post(button);
    else if (button.dataset.copy) {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      if (navigator.clipboard) navigator.clipboard.writeText(field.value).catch(() => {});
      button.textContent = "Copied";
    }
  });

  document.addEventListener("change", (event) => {
    if (event.target.dataset && event.target.dataset.optionsFor) columnChanged(event.target);
  });

  document.addEventListener("DOMContentLoaded", showFlash);
})();
