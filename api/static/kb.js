// kb web page: related work on demand, the API key, collections and notes (through the JSON
// API), and uploads with per-file progress.
// Vanilla JS, no build step, no external URLs. Strings come from the page (#kb-messages).
(function () {
  "use strict";
  var M = JSON.parse(document.getElementById("kb-messages").textContent || "{}");
  var KEY_STORE = "kb_api_key";

  function msg(key, values) {
    var text = M[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ------------------------------------------------------------ related work on search cards
  document.querySelectorAll("details.related[data-src]").forEach(function (box) {
    box.addEventListener("toggle", function () {
      if (!box.open || box.dataset.loaded) return;
      box.dataset.loaded = "1";
      var body = box.querySelector(".related-body");
      var fallback = body.innerHTML;
      body.textContent = msg("card.related_loading");
      fetch(box.dataset.src, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) { body.innerHTML = html; })  // our own server-rendered, escaped HTML
        .catch(function () { body.innerHTML = fallback; delete box.dataset.loaded; });
    });
  });

  // ------------------------------------------------------------ the API key
  function getKey() { return localStorage.getItem(KEY_STORE) || ""; }
  function setKey(key) {
    if (key) {
      localStorage.setItem(KEY_STORE, key);
      // reads accept the key as a cookie too (KB_READ_ACCESS=key); writes need the header
      document.cookie = "kb_key=" + encodeURIComponent(key) + "; path=/; SameSite=Strict";
    } else {
      localStorage.removeItem(KEY_STORE);
      document.cookie = "kb_key=; path=/; max-age=0; SameSite=Strict";
    }
  }

  var keyInput = document.getElementById("api-key");
  if (keyInput) keyInput.value = getKey();
  var keyBox = document.getElementById("keybox");
  var keyState = document.getElementById("key-state");
  function showKeyState() {
    if (keyState) keyState.textContent = msg(getKey() ? "key.state_set" : "key.state_unset");
  }
  showKeyState();
  if (keyBox && !getKey()) keyBox.open = true;
  var keyForm = document.getElementById("keyform");
  if (keyForm) {
    keyForm.addEventListener("submit", function (e) {
      e.preventDefault(); setKey(keyInput.value.trim()); showKeyState();
    });
    document.getElementById("key-forget").addEventListener("click", function () {
      keyInput.value = ""; setKey(""); showKeyState();
    });
  }
  var readKey = document.getElementById("readkey");
  if (readKey) {
    readKey.addEventListener("submit", function (e) {
      e.preventDefault(); setKey(keyInput.value.trim()); location.reload();
    });
  }

  // An error answer in words: ours for the status ("upload.err_401", "write.err_409", ...) and
  // the server's message, which is English: alone in the English page, after ours in Chinese.
  function errorText(prefix, status, body) {
    var text = M[prefix + status] ? msg(prefix + status) : msg(prefix + "other", { status: status });
    var detail = body && (body.error || body.detail);
    if (!detail || typeof detail !== "string") return text;
    return document.documentElement.lang === "en" ? detail : text + " " + detail;
  }

  function authHeaders() {
    var key = getKey();
    return key ? { Authorization: "Bearer " + key } : {};
  }

  // ------------------------------------------------------------ collections and notes
  function say(out, state, text) { out.dataset.state = state; out.textContent = text; }

  // A write to the JSON API with the key; onOk(body) on success, a clear message otherwise.
  function write(method, url, body, out, onOk) {
    if (!getKey()) {
      say(out, "failed", msg("write.no_key"));
      if (keyBox) { keyBox.open = true; keyInput.focus(); }
      return;
    }
    var headers = authHeaders();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    say(out, "busy", msg("write.working"));
    fetch(url, { method: method, headers: headers, credentials: "same-origin",
                 body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        return r.text().then(function (text) {
          var parsed = {};
          try { parsed = text ? JSON.parse(text) : {}; } catch (e) { parsed = {}; }
          if (r.ok) onOk(parsed); else say(out, "failed", errorText("write.err_", r.status, parsed));
        });
      })
      .catch(function () { say(out, "failed", msg("write.err_network")); });
  }

  var create = document.getElementById("create-collection");
  if (create) {
    create.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { name: document.getElementById("coll-name").value.trim(),
                   description: document.getElementById("coll-desc").value.trim() };
      write("POST", "/api/collections", body, create.querySelector(".msg"), function (made) {
        location.href = "/collections/" + made.id;
      });
    });
  }

  var addForm = document.getElementById("add-form");
  if (addForm) {
    addForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var cid = document.getElementById("add-collection").value;
      var note = document.getElementById("add-note").value.trim();
      var url = "/api/collections/" + encodeURIComponent(cid) + "/papers/" + addForm.dataset.paper;
      // no note given: keep the note the paper may already have there
      write("PUT", url, note ? { note: note } : {}, addForm.querySelector(".msg"), function () {
        location.reload();
      });
    });
  }

  var shelf = document.querySelector("article.collection[data-collection]");
  var collForm = document.getElementById("collection-form");
  if (shelf && collForm) {
    // rename / describe the collection (PATCH), and delete it (DELETE, asked first)
    var collUrl = "/api/collections/" + shelf.dataset.collection;
    var collOut = document.getElementById("collection-msg");
    var heading = shelf.querySelector("h1");
    collForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = { name: document.getElementById("edit-name").value.trim(),
                   description: document.getElementById("edit-desc").value.trim() };
      if (!body.name) { say(collOut, "failed", msg("write.name_empty")); return; }
      write("PATCH", collUrl, body, collOut, function (saved) {
        var old = heading.textContent;
        heading.textContent = saved.name;
        document.title = document.title.replace(old, saved.name);
        var desc = shelf.querySelector("p.desc");
        desc.textContent = saved.description;
        desc.hidden = !saved.description;
        shelf.querySelector("details.edit-collection").open = false;
        say(collOut, "ok", msg("write.saved"));
      });
    });
    document.getElementById("delete-collection").addEventListener("click", function () {
      if (!window.confirm(msg("write.confirm_delete", { name: heading.textContent }))) return;
      write("DELETE", collUrl, undefined, collOut, function () { location.href = "/collections"; });
    });
  }
  if (shelf) {
    shelf.querySelectorAll("li.item[data-paper]").forEach(function (li) {
      var url = "/api/collections/" + shelf.dataset.collection + "/papers/" + li.dataset.paper;
      var out = li.querySelector(".msg");
      var form = li.querySelector("form.note-form");
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var note = form.querySelector("textarea").value.trim();
        write("PUT", url, { note: note }, out, function () {
          li.querySelector(".note").textContent = note;
          li.querySelector(".note").hidden = !note;
          li.querySelector(".no-note").hidden = !!note;
          li.querySelector("details.edit-note").open = false;
          say(out, "ok", msg("write.saved"));
        });
      });
      li.querySelector("button.remove").addEventListener("click", function () {
        if (!window.confirm(msg("write.confirm_remove"))) return;
        write("DELETE", url, undefined, out, function () { location.reload(); });
      });
    });
  }

  // ------------------------------------------------------------ add to a collection from a search card
  document.querySelectorAll("details.card-add[data-paper]").forEach(function (box) {
    var form = box.querySelector("form.add-card-form");
    if (!form) return;
    var out = box.querySelector(".msg");
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var select = form.querySelector("select");
      var name = select.options[select.selectedIndex].text;
      var url = "/api/collections/" + encodeURIComponent(select.value) + "/papers/" + box.dataset.paper;
      write("PUT", url, {}, out, function () { say(out, "ok", msg("write.added", { name: name })); });
    });
  });

  // ------------------------------------------------------------ the paper's "Cite" box
  document.querySelectorAll("button.copy[data-target]").forEach(function (button) {
    button.addEventListener("click", function () {
      var area = document.getElementById(button.dataset.target);
      var out = button.parentNode.querySelector(".msg");
      function done() { say(out, "ok", msg("cite.copied")); }
      function manual() { area.focus(); area.select(); say(out, "failed", msg("cite.copy_failed")); }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(area.value).then(done, manual);
      } else {
        area.focus(); area.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (err) { ok = false; }
        if (ok) done(); else manual();
      }
    });
  });

  // ------------------------------------------------------------ the paper's edit form
  var editForm = document.getElementById("edit-form");
  if (editForm) {
    editForm.addEventListener("submit", function (e) {
      e.preventDefault();
      var out = editForm.querySelector(".msg");
      var body = {};
      function field(name) { return editForm.elements[name]; }
      function items(node, sep) {
        return node.value.split(sep).map(function (x) { return x.trim(); }).filter(Boolean);
      }
      ["title", "abstract", "doi", "arxiv_id"].forEach(function (name) {
        var node = field(name);
        if (node.value !== node.defaultValue) body[name] = node.value.trim();
      });
      if (body.title === "") { say(out, "failed", msg("write.err_422")); return; }
      var authors = field("authors");
      if (authors.value !== authors.defaultValue) body.authors = items(authors, /[\n;；]/);
      var year = field("year");
      if (year.value !== year.defaultValue && year.value.trim()) body.year = Number(year.value);
      var tags = field("tags");
      if (tags.value !== tags.defaultValue) {
        var before = items({ value: tags.defaultValue }, /[,，]/);
        var after = items(tags, /[,，]/);
        body.tags_add = after.filter(function (t) { return before.indexOf(t) < 0; });
        body.tags_remove = before.filter(function (t) { return after.indexOf(t) < 0; });
      }
      if (!Object.keys(body).length) { say(out, "ok", msg("write.nothing_changed")); return; }
      write("PATCH", "/api/papers/" + editForm.dataset.paper, body, out, function () {
        say(out, "ok", msg("write.saved"));
        location.reload();
      });
    });
  }

  // ------------------------------------------------------------ uploads
  var zone = document.getElementById("dropzone");
  if (!zone) return;
  var input = document.getElementById("file-input");
  var list = document.getElementById("uploads");
  var maxBytes = Number(zone.dataset.maxMb || 0) * 1024 * 1024;
  var queue = [];
  var busy = false;

  function row(file) {
    var li = el("li", "upload");
    li.appendChild(el("span", "name", file.name));
    var bar = el("progress"); bar.max = 100; bar.value = 0;
    li.appendChild(bar);
    var status = el("span", "status", msg("upload.queued"));
    li.appendChild(status);
    list.appendChild(li);
    return { li: li, bar: bar, status: status };
  }

  function finish(ui, state, text, paperId) {
    ui.li.dataset.state = state;
    ui.bar.value = 100;
    ui.status.textContent = text;
    if (paperId) {
      var a = el("a", "open", msg("upload.open_paper"));
      a.href = "/papers/" + paperId;
      ui.status.appendChild(document.createTextNode(" "));
      ui.status.appendChild(a);
    }
  }

  // "12 chunks; 3 of 10 pages of 'a.pdf' have no usable text (...)": the pages that need
  // OCR, and how to read them from this page when the server can run OCR
  function ocrNote(file, job) {
    var note = (file.detail || "").split("; ").slice(1).join("; ");
    if (!note) return "";
    var box = document.getElementById("ocr");
    return " — " + note + (box && !job.ocr ? " " + msg("upload.ocr_again") : "");
  }

  function poll(ui, jobId) {
    fetch("/api/ingest-jobs/" + encodeURIComponent(jobId), { headers: authHeaders(), credentials: "same-origin" })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; }); })
      .then(function (res) {
        if (!res.ok) { finish(ui, "failed", errorText("upload.err_", res.status, res.body)); return; }
        var job = res.body, file = (job.files || [])[0];
        if (job.status === "queued" || job.status === "running" || (file && file.status === "pending")) {
          setTimeout(function () { poll(ui, jobId); }, 400);
          return;
        }
        if (!file) { finish(ui, "failed", msg("upload.status_failed") + (job.error ? ": " + job.error : "")); return; }
        var state = file.status === "failed" ? "failed" : "ok";
        var text = msg("upload.status_" + file.status);
        if (file.status === "failed") text += ": " + (file.detail || job.error || "");
        else text += ocrNote(file, job);
        finish(ui, state, text, file.paper_id);
      })
      .catch(function () { setTimeout(function () { poll(ui, jobId); }, 1000); });
  }

  function send(item, done) {
    var ui = item.ui, file = item.file;
    if (!getKey()) { finish(ui, "failed", msg("upload.no_key")); done(); return; }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/ingest-jobs");
    xhr.setRequestHeader("Authorization", "Bearer " + getKey());
    xhr.responseType = "json";
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round((e.loaded / e.total) * 100);
      ui.bar.value = pct;
      ui.status.textContent = msg("upload.uploading", { pct: pct });
    };
    xhr.onload = function () {
      var body = xhr.response || {};
      if (xhr.status === 202 || xhr.status === 200 || xhr.status === 201) {
        ui.li.dataset.state = "processing";
        ui.status.textContent = msg("upload.processing");
        poll(ui, body.id);
      } else {
        finish(ui, "failed", errorText("upload.err_", xhr.status, body));
      }
      done();
    };
    xhr.onerror = function () { finish(ui, "failed", msg("upload.err_network")); done(); };
    var form = new FormData();
    form.append("files", file, file.name);
    var ocr = document.getElementById("ocr");
    if (ocr && ocr.checked) form.append("ocr", "true");
    xhr.send(form);
  }

  function next() {
    if (busy || !queue.length) return;
    busy = true;
    send(queue.shift(), function () { busy = false; next(); });
  }

  function add(files) {
    Array.prototype.forEach.call(files, function (file) {
      var ui = row(file);
      if (!/\.pdf$/i.test(file.name) && file.type !== "application/pdf") {
        finish(ui, "failed", msg("upload.not_pdf")); return;
      }
      if (maxBytes && file.size > maxBytes) {
        finish(ui, "failed", msg("upload.too_big", { mb: zone.dataset.maxMb })); return;
      }
      queue.push({ file: file, ui: ui });
    });
    next();
  }

  input.addEventListener("change", function () { add(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) { if (e.dataTransfer) add(e.dataTransfer.files); });
  zone.addEventListener("keydown", function (e) {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  // a file dropped next to the zone must not make the browser leave the page
  window.addEventListener("dragover", function (e) { e.preventDefault(); });
  window.addEventListener("drop", function (e) { e.preventDefault(); });
})();
