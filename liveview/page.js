// The live table of the landing page. The server renders the table as the
// state was at the request; once the event stream's first snapshot arrives,
// this script takes the table over and applies every change the stream
// sends. Untrusted text (names, images, projects) only ever goes into
// textContent and dataset, never into markup.
(function () {
  "use strict";
  const table = document.getElementById("containers");
  const daemonStatus = document.getElementById("daemon-status");
  const daemonInfo = document.getElementById("daemon-info");
  const filter = document.getElementById("filter");
  const summaryLine = document.getElementById("containers-summary");
  if (!table || !daemonStatus || !filter || !window.EventSource) {
    return; // the server's table stays as it is
  }
  const tbody = table.tBodies[0];
  const containers = new Map(); // id -> container, as the API shows it
  const rows = new Map(); // id -> its <tr>
  const cellClasses = ["name", "state", "health", "restarts", "deaths", "exit-code", "uptime", "project"];
  let sortKey = table.dataset.sort === "state" ? "state" : "name";
  let desc = table.dataset.order === "desc";
  let live = false; // the first snapshot was applied
  let streamUp = false;
  let daemonUp = daemonStatus.dataset.up === "1";

  // ago and uptime write what the server's page.go writes.
  function ago(ms) {
    const s = Math.floor(Math.max(ms, 0) / 1000);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 48 * 3600) return Math.floor(s / 3600) + " h";
    return Math.floor(s / 86400) + " days";
  }

  function uptime(c, now) {
    if ((c.state === "running" || c.state === "paused") && c.started_at) {
      return "up " + ago(now - Date.parse(c.started_at));
    }
    if (c.finished_at) return "exited " + ago(now - Date.parse(c.finished_at)) + " ago";
    if (c.created_at) return "created " + ago(now - Date.parse(c.created_at)) + " ago";
    return "";
  }

  function summary(shown, total) {
    const noun = total === 1 ? "container" : "containers";
    return shown === total ? total + " " + noun : shown + " of " + total + " " + noun;
  }

  function flavorName(f) {
    return f === "podman" ? "Podman" : f === "docker" || !f ? "Docker" : f;
  }

  function newRow() {
    const tr = document.createElement("tr");
    for (const cls of cellClasses) {
      const td = document.createElement("td");
      td.className = cls;
      tr.appendChild(td);
    }
    return tr;
  }

  function fill(tr, c, now) {
    tr.dataset.id = c.id;
    tr.dataset.name = c.name;
    tr.dataset.state = c.state;
    if (c.health) tr.dataset.health = c.health;
    else delete tr.dataset.health;
    const td = tr.cells;
    td[0].textContent = c.name;
    td[1].textContent = c.state;
    td[2].textContent = c.health || "";
    if (c.failing_streak > 0) td[2].title = "failing streak " + c.failing_streak;
    else td[2].removeAttribute("title");
    td[3].textContent = String(c.restart_count);
    td[4].textContent = String(c.counts ? c.counts.deaths : 0);
    td[5].textContent = c.exit_code === undefined ? "" : String(c.exit_code);
    td[6].textContent = uptime(c, now);
    td[7].textContent = c.compose_project || "";
  }

  function matches(c, needle) {
    if (!needle) return true;
    return [c.name, c.state, c.health, c.image, c.compose_project].some(
      (s) => typeof s === "string" && s.toLowerCase().includes(needle));
  }

  function cmp(a, b) {
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function compare(a, b) {
    let c = sortKey === "state" ? cmp(a.state, b.state) : cmp(a.name, b.name);
    if (desc) c = -c;
    return c || cmp(a.name, b.name) || cmp(a.id, b.id);
  }

  function showDaemon() {
    const up = streamUp && daemonUp;
    daemonStatus.textContent = up ? "connected" : "not connected";
    daemonStatus.dataset.up = up ? "1" : "0";
  }

  function setStatus(s) {
    daemonUp = !!s.up;
    const d = s.daemon;
    daemonInfo.textContent = d && d.version ? flavorName(d.flavor) + " " + d.version + ", API " + d.api_version : "";
    showDaemon();
  }

  // render puts the rows in order and hides those the filter leaves out.
  function render() {
    const needle = filter.value.trim().toLowerCase();
    const list = Array.from(containers.values()).sort(compare);
    const frag = document.createDocumentFragment();
    let shown = 0;
    for (const c of list) {
      const tr = rows.get(c.id);
      tr.hidden = !matches(c, needle);
      if (!tr.hidden) shown++;
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
    if (summaryLine) summaryLine.textContent = summary(shown, list.length);
    for (const th of table.tHead.querySelectorAll("th[data-sort-key]")) {
      if (th.dataset.sortKey === sortKey) th.setAttribute("aria-sort", desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
    table.dataset.sort = sortKey;
    table.dataset.order = desc ? "desc" : "asc";
  }

  function put(c, now) {
    let tr = rows.get(c.id);
    if (!tr) {
      tr = newRow();
      rows.set(c.id, tr);
    }
    containers.set(c.id, c);
    fill(tr, c, now);
  }

  function applySnapshot(snap) {
    containers.clear();
    rows.clear();
    const now = Date.now();
    for (const c of snap.containers || []) put(c, now);
    streamUp = true;
    setStatus(snap.status || {});
    render();
    live = true;
    table.dataset.live = "1";
  }

  function applyChanges(ch) {
    if (!live) return;
    const now = Date.now();
    for (const c of ch.added || []) put(c, now);
    for (const c of ch.changed || []) put(c, now);
    for (const id of ch.removed || []) {
      containers.delete(id);
      rows.delete(id);
    }
    if (ch.status) setStatus(ch.status);
    render();
  }

  // Sorting and filtering happen here once the table is live; before, the
  // header links and the form ask the server.
  table.tHead.addEventListener("click", (e) => {
    const th = e.target.closest("th[data-sort-key]");
    if (!th || !live) return;
    e.preventDefault();
    if (th.dataset.sortKey === sortKey) desc = !desc;
    else {
      sortKey = th.dataset.sortKey;
      desc = false;
    }
    render();
  });
  filter.addEventListener("input", () => {
    if (live) render();
  });
  if (filter.form) {
    filter.form.addEventListener("submit", (e) => {
      if (live) {
        e.preventDefault();
        render();
      }
    });
  }
  setInterval(() => {
    if (!live) return;
    const now = Date.now();
    for (const [id, c] of containers) rows.get(id).cells[6].textContent = uptime(c, now);
  }, 10000);

  // EventSource reconnects by itself after a network error; after an
  // answer it cannot use (a 503 when the exporter has too many clients, a
  // 401) it gives up, so this tries again, less and less often.
  let backoff = 2000;
  function connect() {
    const es = new EventSource("api/containers/events");
    es.addEventListener("snapshot", (e) => {
      backoff = 2000;
      applySnapshot(JSON.parse(e.data));
    });
    es.addEventListener("changes", (e) => applyChanges(JSON.parse(e.data)));
    es.addEventListener("error", () => {
      streamUp = false;
      showDaemon();
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 60000);
      }
    });
  }
  connect();
})();
