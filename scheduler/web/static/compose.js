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

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }

  function number(n) { return Number(n).toLocaleString(document.documentElement.lang || "id"); }

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
      image: !!(image && image.files && image.files.length)
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
