// darse panel: progressive enhancement only. Every page works without it.
(function () {
  "use strict";
  var json = { headers: { Accept: "application/json" }, credentials: "same-origin" };

  // Buttons show they are working, and a double click submits once.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.hasAttribute("data-busy") && !form.closest("[data-busy]")) return;
    var btn = form.querySelector("button[type=submit]");
    if (!btn) return;
    if (form.dataset.sent) { e.preventDefault(); return; }
    form.dataset.sent = "1";
    btn.setAttribute("aria-busy", "true");
  });

  // Site name checked as you type, with the server's own rules.
  var name = document.querySelector("input[data-check-url]");
  if (name) {
    var out = document.getElementById("name-error");
    var timer, seq = 0;
    name.addEventListener("input", function () {
      clearTimeout(timer);
      var v = name.value.trim();
      if (!v) { out.hidden = true; name.removeAttribute("aria-invalid"); return; }
      timer = setTimeout(function () {
        var mine = ++seq;
        fetch(name.dataset.checkUrl + "?name=" + encodeURIComponent(v), json)
          .then(function (r) { return r.json(); })
          .then(function (res) {
            if (mine !== seq) return;
            if (res.ok) { out.hidden = true; out.textContent = ""; name.removeAttribute("aria-invalid"); }
            else { out.textContent = res.error; out.hidden = false; name.setAttribute("aria-invalid", "true"); }
          }).catch(function () {});
      }, 250);
    });
  }

  // Template parameters: show only the chosen template's.
  var radios = document.querySelectorAll("input[name=template]");
  function showParams() {
    var chosen = document.querySelector("input[name=template]:checked");
    document.querySelectorAll("[data-template]").forEach(function (input) {
      var on = chosen && input.dataset.template === chosen.value;
      input.disabled = !on;
      input.hidden = !on;
      var label = document.querySelector("label[for='" + input.id + "']");
      if (label) label.hidden = !on;
    });
  }
  if (radios.length) { radios.forEach(function (r) { r.addEventListener("change", showParams); }); showParams(); }

  // Live state of sites on the page.
  var live = document.querySelectorAll("[data-live-site]");
  function poll() {
    live.forEach(function (el) {
      var site = el.dataset.liveSite;
      fetch("/sites/" + encodeURIComponent(site) + "/status", json)
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (st) {
          if (!st) return;
          var badge = el.querySelector("[data-state]");
          if (badge) { badge.className = "state state-" + st.state; badge.textContent = st.label; }
          // An operation just finished: reload for the new buttons and history.
          if (el.hasAttribute("data-busy-op") && !st.pending) { location.reload(); return; }
          if (st.pending) el.setAttribute("data-busy-op", st.pending);
        }).catch(function () {});
    });
  }
  if (live.length && live.length <= 50) setInterval(poll, 3000);

  // CPU and memory of the site's services.
  var usage = document.querySelector("[data-usage]");
  function sample() {
    fetch(usage.dataset.usage, json).then(function (r) { return r.ok ? r.json() : []; }).then(function (list) {
      list.forEach(function (u) {
        var cpu = usage.querySelector("[data-cpu='" + u.service + "']");
        var mem = usage.querySelector("[data-mem='" + u.service + "']");
        if (cpu) cpu.textContent = u.cpu;
        if (mem) { mem.textContent = u.memory; mem.title = u.mem_percent + "% of the plan's memory"; mem.classList.toggle("hot", u.mem_percent >= 90); }
      });
    }).catch(function () {}).then(function () { setTimeout(sample, 5000); });
  }
  if (usage) sample();

  // Logs: follow the newest lines while the box is ticked.
  var logs = document.querySelector("[data-logs]");
  if (logs) {
    var follow = document.querySelector("[data-follow]");
    logs.scrollTop = logs.scrollHeight;
    setInterval(function () {
      if (follow && !follow.checked) return;
      fetch(logs.dataset.logs, json).then(function (r) { return r.json(); }).then(function (res) {
        if (res.text === undefined || res.text === logs.textContent) return;
        var atBottom = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 20;
        logs.textContent = res.text || "(nothing logged yet)";
        if (atBottom) logs.scrollTop = logs.scrollHeight;
      }).catch(function () {});
    }, 2000);
  }

  // Operation page: follow it to the end.
  var op = document.querySelector("[data-op]");
  if (op && (op.dataset.opState === "queued" || op.dataset.opState === "running")) {
    var label = op.querySelector("[data-op-label]");
    var follow = setInterval(function () {
      fetch("/ops/" + op.dataset.op, json).then(function (r) { return r.json(); }).then(function (st) {
        if (st.state === "running" && label) label.textContent = "Working on it…";
        if (st.state !== op.dataset.opState && (st.state === "done" || st.state === "failed")) {
          clearInterval(follow);
          if (st.state === "done" && st.next) location.href = st.next; else location.reload();
        }
      }).catch(function () {});
    }, 1000);
  }
})();
