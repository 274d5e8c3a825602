// The activity audit log viewer: reads the JSON query API and builds the table and the detail
// panel. Every value comes from events (users' text): it only ever goes into textContent or
// attribute values, never into HTML.
"use strict";

(function () {
  const root = document.getElementById("viewer");
  if (!root) {
    return;
  }
  const PAGE_SIZE = 50;
  const api = {
    activity: root.dataset.activity,
    facets: root.dataset.facets,
    exportCsv: root.dataset.export,
  };
  const form = document.getElementById("filters");
  const actorInput = document.getElementById("actor");
  const actorList = document.getElementById("actors");
  const activitySelect = document.getElementById("activity");
  const fromInput = document.getElementById("from");
  const toInput = document.getElementById("to");
  const textInput = document.getElementById("q");
  const exportLink = document.getElementById("export");
  const statusLine = document.getElementById("status");
  const rows = document.querySelector("#events tbody");
  const moreButton = document.getElementById("more");
  const detail = document.getElementById("detail");
  const detailFields = document.getElementById("detail-fields");
  const changeRows = document.querySelector("#changes tbody");
  const noChanges = document.getElementById("no-changes");

  const activityNames = new Map();
  for (const option of activitySelect.options) {
    if (option.value.startsWith("activity:")) {
      activityNames.set(option.value.slice("activity:".length), option.dataset.label);
    }
  }
  const categoryNames = new Map();
  for (const group of activitySelect.querySelectorAll("optgroup")) {
    const first = group.querySelector("option");
    if (first && first.value.startsWith("category:")) {
      categoryNames.set(first.value.slice("category:".length), group.label);
    }
  }
  const actorsSeen = new Set();
  let nextCursor = null;
  let listing = new URLSearchParams(); // the filters of the rows shown (a cursor is made for them)
  let shown = 0;
  let generation = 0; // answers to an older filter are dropped

  function nextDay(day) {
    const moment = new Date(day + "T00:00:00Z");
    moment.setUTCDate(moment.getUTCDate() + 1);
    return moment.toISOString().slice(0, 10);
  }

  // The API's parameters for what the filters say (dates are whole UTC days; "to" includes
  // its day, the API's "to" is exclusive).
  function filterParams() {
    const params = new URLSearchParams();
    const actor = actorInput.value.trim();
    if (actor) {
      params.set("actor", actor);
    }
    const chosen = activitySelect.value;
    if (chosen.startsWith("category:")) {
      params.set("category", chosen.slice("category:".length));
    } else if (chosen.startsWith("activity:")) {
      params.set("activity", chosen.slice("activity:".length));
    }
    if (fromInput.value) {
      params.set("from", fromInput.value + "T00:00:00Z");
    }
    if (toInput.value) {
      params.set("to", nextDay(toInput.value) + "T00:00:00Z");
    }
    const text = textInput.value.trim();
    if (text) {
      params.set("q", text);
    }
    return params;
  }

  // The page's own address keeps the filters, so a reload or a shared link shows the same.
  function rememberFilters() {
    const params = new URLSearchParams();
    for (const [name, input] of [
      ["actor", actorInput],
      ["activity", activitySelect],
      ["from", fromInput],
      ["to", toInput],
      ["q", textInput],
    ]) {
      if (input.value) {
        params.set(name, input.value);
      }
    }
    const query = params.toString();
    history.replaceState(null, "", query ? "?" + query : location.pathname);
  }

  // An API or store that hangs must not leave the page "Loading…" for ever.
  const ANSWER_WITHIN_MS = 30000;

  async function getJson(url) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ANSWER_WITHIN_MS);
    let response;
    let body = null;
    try {
      response = await fetch(url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        signal: abort.signal,
      });
      try {
        body = await response.json();
      } catch (_error) {
        if (abort.signal.aborted) {
          throw _error;
        }
        body = null; // not JSON: the status says what happened
      }
    } catch (_error) {
      throw new Error(
        abort.signal.aborted
          ? "The audit log did not answer within 30 s: try again, or narrow the filters."
          : "The API cannot be reached: check the connection and try again.",
      );
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) {
      throw new Error(problemText(response.status, body));
    }
    return body;
  }

  function problemText(status, body) {
    if (status === 401) {
      return "Your session ended: reload the page to sign in again.";
    }
    const detailOf = body && body.detail;
    if (Array.isArray(detailOf)) {
      return detailOf
        .map((item) => [].concat(item.loc || []).slice(1).join(".") + ": " + item.msg)
        .join("; ");
    }
    if (typeof detailOf === "string") {
      return detailOf + " (HTTP " + status + ")";
    }
    return "The audit log could not be read (HTTP " + status + ").";
  }

  function say(text, isError) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(isError));
  }

  function eventOf(item) {
    return item && typeof item.event === "object" && item.event !== null ? item.event : item;
  }

  function shownTime(iso) {
    return typeof iso === "string" ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "";
  }

  function actorText(actor) {
    if (!actor) {
      return "";
    }
    const name = actor.name || actor.user_id || "";
    return actor.email && actor.email !== name ? name + " <" + actor.email + ">" : name;
  }

  function resourceText(resource) {
    if (!resource) {
      return "";
    }
    const name = resource.name || resource.id || "";
    return resource.type ? resource.type + ": " + name : name;
  }

  function valueText(value) {
    if (value === null || value === undefined) {
      return "(none)";
    }
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    row.appendChild(td);
    return td;
  }

  function addRow(item) {
    const event = eventOf(item);
    const row = document.createElement("tr");
    row.tabIndex = 0;
    row.dataset.eventId = event.event_id || "";
    cell(row, shownTime(event.occurred_at), "time");
    cell(row, actorText(event.actor), "user");
    cell(row, activityNames.get(event.activity) || event.activity || "", "activity");
    cell(row, resourceText(event.resource), "resource");
    cell(row, (event.request && event.request.ip) || "", "ip");
    row.addEventListener("click", () => showDetail(row));
    row.addEventListener("keydown", (key) => {
      if (key.key === "Enter") {
        showDetail(row);
      }
    });
    rows.appendChild(row);
    if (event.actor && (event.actor.email || event.actor.user_id)) {
      rememberActor(event.actor.email || event.actor.user_id);
    }
  }

  function rememberActor(who) {
    if (typeof who !== "string" || !who || actorsSeen.has(who) || actorsSeen.size >= 500) {
      return;
    }
    actorsSeen.add(who);
    const option = document.createElement("option");
    option.value = who;
    actorList.appendChild(option);
  }

  async function load(append) {
    const mine = append ? generation : ++generation;
    const params = new URLSearchParams(listing);
    params.set("limit", String(PAGE_SIZE));
    if (append && nextCursor) {
      params.set("cursor", nextCursor);
    }
    moreButton.disabled = true;
    say(append ? "Loading more…" : "Loading…");
    try {
      const page = await getJson(api.activity + "?" + params.toString());
      if (mine !== generation) {
        return;
      }
      if (!append) {
        rows.replaceChildren();
        shown = 0;
      }
      const events = Array.isArray(page && page.events) ? page.events : [];
      for (const item of events) {
        addRow(item);
      }
      shown += events.length;
      nextCursor = (page && page.next_cursor) || null;
      moreButton.hidden = !nextCursor;
      say(
        shown === 0
          ? "No events match these filters."
          : shown + (shown === 1 ? " event" : " events") + (nextCursor ? ", more to load" : ""),
      );
    } catch (error) {
      if (mine === generation) {
        say(error.message, true);
      }
    } finally {
      moreButton.disabled = false;
    }
  }

  async function loadFacets() {
    const mine = generation;
    const params = new URLSearchParams(listing);
    try {
      const facets = await getJson(api.facets + "?" + params.toString());
      if (mine !== generation || !facets) {
        return;
      }
      const categories = countsOf(facets.categories);
      const activities = countsOf(facets.activities);
      for (const option of activitySelect.options) {
        const [kind, key] = option.value.split(":");
        const counts = kind === "category" ? categories : kind === "activity" ? activities : null;
        if (counts && option.dataset.label) {
          option.textContent = option.dataset.label + " (" + (counts.get(key) || 0) + ")";
        }
      }
      for (const who of actorsOf(facets)) {
        rememberActor(who);
      }
    } catch (_error) {
      // the counts are a help, not the log: the table says what went wrong
    }
  }

  // Counts by key from a list of {key, count} (what the API answers) or a {key: count} map.
  function countsOf(given) {
    const counts = new Map();
    if (Array.isArray(given)) {
      for (const item of given) {
        if (item && typeof item.key === "string") {
          counts.set(item.key, Number(item.count) || 0);
        }
      }
    } else if (given && typeof given === "object") {
      for (const [key, count] of Object.entries(given)) {
        counts.set(key, Number(count) || 0);
      }
    }
    return counts;
  }

  // Users from the facets if the API names them (a list, or counts by user).
  function actorsOf(facets) {
    const given = facets.actors || facets.users;
    if (Array.isArray(given)) {
      return given.map((who) =>
        typeof who === "string" ? who : who && (who.email || who.user_id || who.actor),
      );
    }
    return given && typeof given === "object" ? Object.keys(given) : [];
  }

  function addField(name, value) {
    if (value === null || value === undefined || value === "") {
      return;
    }
    const term = document.createElement("dt");
    term.textContent = name;
    const description = document.createElement("dd");
    description.textContent = valueText(value);
    detailFields.append(term, description);
  }

  async function showDetail(row) {
    for (const other of rows.querySelectorAll("tr.selected")) {
      other.classList.remove("selected");
    }
    row.classList.add("selected");
    const eventId = row.dataset.eventId;
    try {
      const item = await getJson(api.activity + "/" + encodeURIComponent(eventId));
      if (row.dataset.eventId !== eventId || !row.classList.contains("selected")) {
        return;
      }
      renderDetail(eventOf(item));
    } catch (error) {
      say(error.message, true);
    }
  }

  function renderDetail(event) {
    detailFields.replaceChildren();
    changeRows.replaceChildren();
    const actor = event.actor || {};
    const resource = event.resource || {};
    const outcome = event.outcome || {};
    const request = event.request || {};
    addField("Time (UTC)", shownTime(event.occurred_at));
    addField("User", actorText(actor));
    addField("User id", actor.user_id);
    addField("Role", actor.role);
    addField("Signed in with", actor.auth_method);
    addField("Activity", activityNames.get(event.activity) || event.activity);
    addField("Category", categoryNames.get(event.category) || event.category);
    addField("Resource", resourceText(event.resource));
    addField("Resource id", resource.id);
    addField("Folder", resource.folder);
    addField("Outcome", [outcome.status, outcome.reason].filter(Boolean).join(": "));
    addField("IP", request.ip);
    addField("User agent", request.user_agent);
    addField("Request id", request.request_id);
    addField("Event id", event.event_id);
    const details = event.details && typeof event.details === "object" ? event.details : {};
    for (const [name, value] of Object.entries(details)) {
      addField(name, value);
    }
    const changes = Array.isArray(event.changes) ? event.changes : [];
    for (const change of changes) {
      const row = document.createElement("tr");
      cell(row, valueText(change.field), "field");
      cell(row, valueText(change.old_value), "old");
      cell(row, "→", "arrow");
      cell(row, valueText(change.new_value), "new");
      changeRows.appendChild(row);
    }
    noChanges.hidden = changes.length > 0;
    document.getElementById("changes").hidden = changes.length === 0;
    detail.hidden = false;
  }

  function refresh() {
    listing = filterParams();
    const params = new URLSearchParams(listing);
    params.set("format", "csv");
    exportLink.href = api.exportCsv + "?" + params.toString();
    rememberFilters();
    detail.hidden = true;
    nextCursor = null;
    load(false);
    loadFacets();
  }

  form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    refresh();
  });
  activitySelect.addEventListener("change", refresh);
  moreButton.addEventListener("click", () => load(true));
  refresh();
})();
