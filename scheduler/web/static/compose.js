// The compose page's live preview and record search (promo-scheduler; hand-written, no library).
// Without this script the page still works: its "Preview" button renders the previews on the server.
// Everything shown is set as text (textContent), never as markup.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  var box = document.getElementById("previews");
  if (!form || !box || !window.fetch) { return; }
  var csrf = form.querySelector("input[name=csrf]").value;
  var label = function (name) { return box.getAttribute("data-" + name) || name; };
  var timer = null;
  var asked = 0;
  // The chosen image, sent once to /api/v1/images when chosen: its id goes with every preview, and
  // the server fits it for each platform once (stored, reused), not at every keystroke.
  var imageInput = document.getElementById("image");
  var staged = null;
  var sent = 0;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function number(n) { return Number(n).toLocaleString(document.documentElement.lang || "id"); }

  function size(n) {  // 1 MB = 1,048,576 bytes, as the platforms count their limits
    var lang = document.documentElement.lang || "id";
    var units = [["MB", 1048576], ["KB", 1024]];
    for (var i = 0; i < units.length; i++) {
      if (n >= units[i][1]) {
        return (n / units[i][1]).toLocaleString(lang, {maximumFractionDigits: 1}) + " " + units[i][0];
      }
    }
    return n + " B";
  }

  function imageFacts(im) {
    if (im.error) { return el("p", "problem image-fit", label("image") + ": " + im.error); }
    var line = el("p", "image-fit", label("image") + ": ");
    line.appendChild(el("span", "format", im.format.split("/").pop().toUpperCase()));
    line.appendChild(document.createTextNode(" · "));
    line.appendChild(el("span", "pixels", im.width + "×" + im.height + " px"));
    line.appendChild(document.createTextNode(" · "));
    line.appendChild(el("span", "bytes", number(im.bytes) + " " + label("bytes") + " (" + size(im.bytes) + ")"));
    line.appendChild(document.createTextNode(" · "));
    var fit = im.reshaped || (im.as_attached ? "as_attached" : "changed");
    line.appendChild(el("span", "fit", label("fit-" + fit)));
    return line;
  }

  function body() {
    var data = new FormData(form);
    var image = document.getElementById("image");
    return {
      channels: data.getAll("channels"),
      source: data.get("source") || "text",
      product: data.get("product") || null,
      event: data.get("event") || null,
      text: data.get("text") || null,
      link: data.get("link") || null,
      template: data.get("template") || null,
      shorten: data.get("shorten") === "true",
      image: !!(image && image.files && image.files.length),
      image_id: staged
    };
  }

  function show(rows, problem) {
    var keep = box.querySelector("h2");
    while (box.lastChild) { box.removeChild(box.lastChild); }
    if (keep) { box.appendChild(keep); }
    if (problem) { box.appendChild(el("p", "problem", problem)); return; }
    if (!rows.length) { box.appendChild(el("p", "note", label("empty"))); return; }
    rows.forEach(function (p) {
      var card = el("article", "preview");
      card.setAttribute("data-channel", p.channel);
      var head = el("h3", "", p.channel + " ");
      head.appendChild(el("span", "note", p.platform));
      card.appendChild(head);
      if (p.error) {
        card.appendChild(el("p", "problem", p.error));
      } else {
        p.counts.forEach(function (c) {
          card.appendChild(el("p", "count " + (c.fits ? "ok" : "over"),
            number(c.count) + " / " + number(c.limit) + " " + (box.getAttribute("data-unit-" + c.method) || c.method)));
        });
        if (p.shortened) { card.appendChild(el("p", "shortened", label("shortened"))); }
        card.appendChild(el("pre", "post", p.text));
        card.appendChild(el("p", "note tags", label("hashtags") + ": " + (p.hashtags.join(" ") || label("none")) +
          " · " + label("link") + ": " + (p.link || label("none"))));
        if (p.image) {
          card.appendChild(imageFacts(p.image));
          if (p.image.changes && p.image.changes.length) {
            card.appendChild(el("p", "note image-changes", p.image.changes.join("; ")));
          }
        }
      }
      box.appendChild(card);
    });
  }

  function refresh() {
    var data = body();
    var chosen = data.source === "product" ? data.product : data.source === "event" ? data.event : data.text;
    if (!data.channels.length || !chosen || !chosen.trim()) { asked++; show([]); return; }
    var mine = ++asked;
    fetch("/api/v1/preview", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(data)
    }).then(function (r) {
      return r.json().then(function (json) { return {ok: r.ok, json: json}; });
    }).then(function (answer) {
      if (mine !== asked) { return; }  // a newer request is on its way
      if (answer.ok) { show(answer.json.channels); } else { show([], answer.json.error || "?"); }
    }).catch(function () { /* the server-side Preview button still works */ });
  }

  function later() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(refresh, 300);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);

  function stage() {
    staged = null;
    var mine = ++sent;
    var file = imageInput.files && imageInput.files[0];
    if (!file) { later(); return; }
    var data = new FormData();
    data.append("image", file);
    fetch("/api/v1/images", {
      method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf}, body: data
    }).then(function (r) {
      return r.json().then(function (json) { return {ok: r.ok, json: json}; });
    }).then(function (answer) {
      if (mine !== sent) { return; }  // another image was chosen meanwhile
      if (answer.ok) { staged = answer.json.id; refresh(); } else { show([], answer.json.error || "?"); }
    }).catch(function () { /* the server-side Preview button still works */ });
  }
  if (imageInput) { imageInput.addEventListener("change", stage); }

  // The record search: matches as the staff member types; choosing one fills the source.
  var search = document.getElementById("search");
  var list = document.getElementById("matches");
  var searchTimer = null;
  function pick(m) {
    document.getElementById("source-" + m.kind).checked = true;
    document.getElementById(m.kind).value = m.id;
    refresh();
  }
  function find() {
    var q = search.value.trim();
    if (!q) { while (list.lastChild) { list.removeChild(list.lastChild); } return; }
    fetch("/api/v1/sources?q=" + encodeURIComponent(q), {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (found) {
        while (list.lastChild) { list.removeChild(list.lastChild); }
        found.forEach(function (m) {
          var li = el("li");
          var b = el("button", "link", (list.getAttribute("data-" + m.kind) || m.kind) + " " + m.id + ": " + m.name);
          b.type = "button";
          b.addEventListener("click", function () { pick(m); });
          li.appendChild(b);
          li.appendChild(el("span", "note", " " + m.detail));
          list.appendChild(li);
        });
      }).catch(function () {});
  }
  if (search && list) {
    search.addEventListener("input", function () {
      if (searchTimer) { clearTimeout(searchTimer); }
      searchTimer = setTimeout(find, 300);
    });
  }
}());
